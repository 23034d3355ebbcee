/**
 * Checks HTTP responses and webhook payloads against GitHub's published OpenAPI description
 * (`@octokit/openapi`, `generated/api.github.com.deref.json`) with Ajv. The 70 MB description is read once
 * and the runner-related subset cached in the temp directory, so each test file pays milliseconds.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";

type Schema = Record<string, unknown>;

interface ResponseSpec {
  content?: Record<string, { schema?: Schema }>;
}

interface OperationSpec {
  operationId: string;
  responses: Record<string, ResponseSpec>;
}

interface Subset {
  paths: Record<string, Record<string, OperationSpec>>;
  webhooks: Record<string, Schema>;
  basicError: Schema;
}

/** The result of checking one response. */
export interface ConformanceResult {
  /** The operation, e.g. `actions/list-self-hosted-runners-for-repo`. */
  operationId: string;
  /** The path template matched, e.g. `/repos/{owner}/{repo}/actions/runners`. */
  template: string;
  /** Whether the status is one the operation documents (undocumented errors are checked as `basic-error`). */
  documented: boolean;
  /** Ajv errors as `instancePath message`; empty when the body conforms. */
  errors: string[];
}

const PATH_FILTER = /^\/(?:repos\/\{owner\}\/\{repo\}|orgs\/\{org\})\/actions\/(?:runners|runner-groups|runs|jobs)(?:\/|$)|^\/repos\/\{owner\}\/\{repo\}\/actions\/workflows\/\{workflow_id\}\/dispatches$|^\/rate_limit$/;

function loadSubset(): Subset {
  const require = createRequire(import.meta.url);
  const specPath = require.resolve("@octokit/openapi/generated/api.github.com.deref.json");
  const version = (require("@octokit/openapi/package.json") as { version: string }).version;
  const size = statSync(specPath).size;
  const cacheDir = join(tmpdir(), "lk-openapi-cache");
  const cachePath = join(cacheDir, `runner-subset-v3-${version}-${size}.json`);
  try {
    return JSON.parse(readFileSync(cachePath, "utf8")) as Subset;
  } catch {
    // Not cached yet (or a torn cache): build it from the full description.
  }
  const spec = JSON.parse(readFileSync(specPath, "utf8")) as {
    paths: Record<string, Record<string, OperationSpec>>;
    "x-webhooks": Record<string, { post: { requestBody: { content: Record<string, { schema: Schema }> } } }>;
  };
  const paths: Subset["paths"] = {};
  for (const [p, ops] of Object.entries(spec.paths)) if (PATH_FILTER.test(p)) paths[p] = ops;
  const webhooks: Subset["webhooks"] = {};
  for (const [name, hook] of Object.entries(spec["x-webhooks"])) {
    if (name.startsWith("workflow-job-")) webhooks[name] = hook.post.requestBody.content["application/json"]?.schema ?? {};
  }
  const notFound = spec.paths["/repos/{owner}/{repo}/actions/runners/{runner_id}/labels"]?.get?.responses["404"];
  const basicError = notFound?.content?.["application/json"]?.schema;
  if (!basicError) throw new Error("@octokit/openapi: cannot find the basic-error schema");
  const subset: Subset = { paths, webhooks, basicError };
  allowNullInNullableEnums(subset);
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${cachePath}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(subset));
  renameSync(tmp, cachePath);
  return subset;
}

/**
 * OpenAPI 3.0 `nullable: true` next to an `enum` that lacks null: GitHub sends null there (a queued job's
 * `conclusion`) and its own clients type it `… | null`, but Ajv's enum check would refuse it. Add the null.
 */
function allowNullInNullableEnums(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) allowNullInNullableEnums(item);
    return;
  }
  if (typeof node !== "object" || node === null) return;
  const schema = node as Schema;
  if (schema.nullable === true && Array.isArray(schema.enum) && !schema.enum.includes(null)) schema.enum = [...(schema.enum as unknown[]), null];
  for (const value of Object.values(schema)) allowNullInNullableEnums(value);
}

interface CompiledPath {
  template: string;
  regex: RegExp;
  specificity: number;
}

/** Validates responses of the runner-related operations and `workflow_job` webhooks. */
export class OpenApiValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly templates: CompiledPath[];

  private constructor(private readonly subset: Subset) {
    this.ajv = new Ajv({ strict: false, allErrors: true, logger: false });
    const addFormats = (addFormatsModule as unknown as { default: (ajv: Ajv) => void }).default ?? (addFormatsModule as unknown as (ajv: Ajv) => void);
    addFormats(this.ajv);
    this.templates = Object.keys(subset.paths)
      .map((template) => {
        const segs = template.split("/").filter((s) => s !== "");
        const regex = new RegExp(`^/${segs.map((s) => (s.startsWith("{") ? "[^/]+" : s.replace(/[.*+?^$()|[\]\\]/g, "\\$&"))).join("/")}$`);
        return { template, regex, specificity: segs.reduce((n, s, i) => n + (s.startsWith("{") ? 0 : 2 ** (20 - i)), 0) };
      })
      .sort((a, b) => b.specificity - a.specificity);
  }

  /** Loads the description (cached subset). */
  static load(): OpenApiValidator {
    return new OpenApiValidator(loadSubset());
  }

  /** The operation of a request path (relative to the API base, no query), or undefined. */
  operationFor(method: string, path: string): { template: string; operation: OperationSpec } | undefined {
    const m = method.toLowerCase();
    for (const t of this.templates) {
      if (!t.regex.test(path)) continue;
      const op = this.subset.paths[t.template]?.[m];
      if (op) return { template: t.template, operation: op };
    }
    return undefined;
  }

  private validator(key: string, schema: Schema): ValidateFunction {
    let v = this.compiled.get(key);
    if (!v) {
      v = this.ajv.compile(schema);
      this.compiled.set(key, v);
    }
    return v;
  }

  /**
   * Checks a response body against its operation's schema for `status`. A 2xx object body must also carry
   * no top-level keys beyond the schema's (Octokit's paginate takes the first non-count key as the list).
   * Throws when no operation matches: a route the emulator serves but GitHub does not document.
   */
  checkResponse(method: string, path: string, status: number, body: unknown): ConformanceResult {
    const found = this.operationFor(method, path);
    if (!found) throw new Error(`no OpenAPI operation for ${method} ${path}`);
    const { template, operation } = found;
    const spec = operation.responses[String(status)];
    const result: ConformanceResult = { operationId: operation.operationId, template, documented: spec !== undefined, errors: [] };
    let schema = spec?.content?.["application/json"]?.schema;
    if (!spec && status >= 400) schema = this.subset.basicError;
    if (status === 204 || status === 304 || (spec && !spec.content)) {
      if (body !== undefined && body !== "") result.errors.push(`status ${status} must have no body`);
      return result;
    }
    if (!schema) {
      result.errors.push(`status ${status} is not documented for ${operation.operationId}`);
      return result;
    }
    const validate = this.validator(`${operation.operationId} ${spec ? status : "basic-error"}`, schema);
    if (!validate(body)) result.errors.push(...(validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "invalid"}`));
    const props = schema.properties as Record<string, unknown> | undefined;
    if (status < 300 && props && typeof body === "object" && body !== null && !Array.isArray(body)) {
      for (const k of Object.keys(body)) if (!(k in props)) result.errors.push(`/ has key ${k} the schema does not define`);
    }
    return result;
  }

  /** Checks a `workflow_job` webhook payload against `x-webhooks` (`workflow-job-<action>`). */
  checkWebhook(action: string, payload: unknown): string[] {
    const name = `workflow-job-${action.replace(/_/g, "-")}`;
    const schema = this.subset.webhooks[name];
    if (!schema) return [`no webhook schema ${name}`];
    const validate = this.validator(`webhook ${name}`, schema);
    return validate(payload) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "invalid"}`);
  }
}
