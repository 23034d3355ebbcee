/** zod field types shared by the agent config and the coordinator policy. */
import { z } from "zod";
import { LanekeeperError } from "./errors.js";
import { MAX_NATS_SERVERS } from "./limits.js";
import {
  parseScope,
  validateHostId,
  validateImageRef,
  validateLabel,
  validatePoolName,
  validateRunnerGroup,
  validateRunnerVersion,
} from "./names.js";
import { DURATION_PATTERN, parseDurationString, validateCron, validateTimeZone } from "./scaling-schedule.js";

/**
 * A string checked by one of the `names.ts` validators, so config errors say the same precise thing as intent
 * rejections. `pattern` is published in the JSON Schema for editors.
 */
export function validatedString(validate: (s: string) => unknown, meta: { pattern?: string; description: string }) {
  return z
    .string()
    .superRefine((value, ctx) => {
      try {
        validate(value);
      } catch (err) {
        if (!(err instanceof LanekeeperError)) throw err;
        ctx.addIssue({ code: "custom", message: err.message });
      }
    })
    .meta(meta);
}

/** A host id. */
export const hostIdField = validatedString(validateHostId, {
  pattern: "^[a-z0-9][a-z0-9-]{0,62}$",
  description: "Host id: lower-case letters, digits and '-', at most 63 characters.",
});

/** A pool name. */
export const poolNameField = validatedString(validatePoolName, {
  pattern: "^[a-z0-9][a-z0-9-]{0,62}$",
  description: "Pool name: lower-case letters, digits and '-', at most 63 characters.",
});

/** A scope: `owner/repo` or `org:<org>`. */
export const scopeField = validatedString(parseScope, {
  pattern: "^(org:[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}|[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/[A-Za-z0-9._-]{1,100})$",
  description: 'Runner scope: "owner/repo" or "org:<org>".',
});

/** A capability label (the reserved `lk-` prefix is refused). */
export const labelField = validatedString((s) => validateLabel(s), {
  pattern: "^[A-Za-z0-9][A-Za-z0-9._:+/-]{0,99}$",
  description: 'Runner label: letters, digits and . _ : + / -, at most 100 characters, not starting with "lk-".',
});

/** A container image pinned by digest. */
export const imageField = validatedString(validateImageRef, {
  pattern: "^[^@\\s]+@sha256:[0-9a-f]{64}$",
  description: "Container image pinned by digest: name@sha256:<64 hex>.",
});

/** A runner version such as `2.330.0`. */
export const runnerVersionField = validatedString(validateRunnerVersion, {
  pattern: "^\\d{1,6}\\.\\d{1,6}\\.\\d{1,6}$",
  description: "GitHub Actions runner version, e.g. 2.330.0.",
});

/**
 * A container engine network mode: `host`, `bridge`, `none`, or the name of a network the engine knows. The
 * `container:<id>` form is refused (no `:` allowed): a lane must never join another container's namespaces.
 */
export const containerNetworkField = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be "host", "bridge", "none" or an engine network name ([A-Za-z0-9][A-Za-z0-9_.-]*, no "container:")')
  .meta({ description: 'NetworkMode of lane containers: "host", "bridge", "none" or an engine network name.' });

/** A runner group name. */
export const runnerGroupField = validatedString(validateRunnerGroup, {
  description: "Runner group of an organization scope.",
});

function checkAbsolutePath(p: string): void {
  if (!p.startsWith("/")) throw new LanekeeperError("INVALID_PATH", "must be an absolute path (starting with /)");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) throw new LanekeeperError("INVALID_PATH", "must not contain control characters");
  if (p.split("/").some((seg) => seg === ".." || seg === ".")) {
    throw new LanekeeperError("INVALID_PATH", "must not contain '.' or '..' segments");
  }
  if (p.length > 4096) throw new LanekeeperError("INVALID_PATH", "is longer than 4096 characters");
}

/** An absolute, normalized filesystem path. */
export const absolutePathField = validatedString(checkAbsolutePath, {
  pattern: "^/",
  description: "Absolute path without '.' or '..' segments.",
});

function checkUrl(protocols: readonly string[]) {
  return (s: string): void => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new LanekeeperError("INVALID_URL", "must be a URL");
    }
    if (!protocols.includes(u.protocol)) {
      throw new LanekeeperError("INVALID_URL", `must use ${protocols.map((p) => p.replace(/:$/, "")).join(" or ")}`);
    }
    if (u.username !== "" || u.password !== "") {
      throw new LanekeeperError("INVALID_URL", "must not embed credentials; use the separate credential settings");
    }
  };
}

/** An http(s) URL without embedded credentials. */
export const httpUrlField = validatedString(checkUrl(["https:", "http:"]), { description: "http(s) URL." });

/** A NATS URL without embedded credentials. */
export const natsUrlField = validatedString(checkUrl(["nats:", "tls:", "ws:", "wss:"]), {
  description: "NATS server URL (nats://, tls://, ws:// or wss://), without credentials.",
});

/** A list of NATS server URLs of one cluster (a client connects to any and fails over to the others). */
export const natsServersField = uniqueList(natsUrlField, "NATS server")
  .min(1)
  .max(MAX_NATS_SERVERS)
  .meta({ description: "NATS servers of one cluster (no credentials in the URLs); the client connects to any of them and fails over." });

/** An environment variable name. */
export const envVarField = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, "must be an environment variable name such as GITHUB_TOKEN")
  .meta({ description: "Name of an environment variable (upper case, digits, '_')." });

/** A positive integer number of milliseconds within bounds. */
export function msField(min: number, max: number) {
  return z.number().int().min(min).max(max);
}

/** A list with no duplicates. */
export function uniqueList<T extends z.ZodType>(item: T, what: string) {
  return z.array(item).superRefine((list, ctx) => {
    const seen = new Set<unknown>();
    list.forEach((v, i) => {
      if (seen.has(v)) ctx.addIssue({ code: "custom", path: [i], message: `${what} listed twice` });
      seen.add(v);
    });
  });
}

/** A duration string such as `90s`, `5m`, `10h` or `1h30m`. */
export const durationField = validatedString(parseDurationString, {
  pattern: DURATION_PATTERN,
  description: "Duration: digits and a unit (ms, s, m, h, d), e.g. 90s, 5m, 10h, 1h30m.",
});

/** A 5-field cron expression. */
export const cronField = validatedString((s) => validateCron(s), {
  description: 'Cron expression, 5 fields (minute hour day-of-month month day-of-week), e.g. "0 8 * * 1-5".',
});

/** An IANA time zone name. */
export const timeZoneField = validatedString(validateTimeZone, {
  description: "IANA time zone, e.g. Europe/Berlin, America/New_York or UTC.",
});
