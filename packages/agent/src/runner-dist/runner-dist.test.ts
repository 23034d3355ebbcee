import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { isRejectError, RejectReason } from "@lanekeeper/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RunnerDistError } from "../errors.js";
import { RunnerDist, distDirName } from "./runner-dist.js";

interface Entry {
  name: string;
  type?: string;
  body?: string;
  link?: string;
  mode?: number;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, "0")}\0`;
}

/** A gzip'd ustar archive of `entries`, any name and type allowed (so tests can build hostile ones). */
function tgz(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? "");
    const h = Buffer.alloc(512);
    h.write(e.name, 0, "utf8");
    h.write(octal(e.mode ?? 0o755, 8), 100, "ascii");
    h.write(octal(0, 8), 108, "ascii");
    h.write(octal(0, 8), 116, "ascii");
    h.write(octal(body.length, 12), 124, "ascii");
    h.write(octal(0, 12), 136, "ascii");
    h.write("        ", 148, "ascii");
    h.write(e.type ?? "0", 156, "ascii");
    if (e.link !== undefined) h.write(e.link, 157, "utf8");
    h.write("ustar\0", 257, "ascii");
    h.write("00", 263, "ascii");
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
    parts.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

const RUNNER: Entry[] = [
  { name: "run.sh", body: "#!/bin/sh\necho run\n" },
  { name: "config.sh", body: "#!/bin/sh\necho config\n" },
  { name: "bin/", type: "5" },
  { name: "bin/Runner.Listener", body: "x".repeat(3000) },
];
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

let dir: string;
let server: Server;
let origin: string;
let files: Map<string, Buffer>;
let requests: { url: string; range: string | undefined }[];
/** Per-path hook: return true when it answered. */
let hook: ((req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean) | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-dist-"));
  files = new Map();
  requests = [];
  hook = undefined;
  server = createServer((req, res) => {
    requests.push({ url: req.url ?? "", range: req.headers.range });
    const body = files.get(req.url ?? "");
    if (hook && body && hook(req, res, body)) return;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (m) {
      const from = Number(m[1]);
      res.writeHead(206, { "content-length": body.length - from, "content-range": `bytes ${from}-${body.length - 1}/${body.length}` }).end(body.subarray(from));
      return;
    }
    res.writeHead(200, { "content-length": body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

function dist(over: Partial<ConstructorParameters<typeof RunnerDist>[0]> = {}): RunnerDist {
  return new RunnerDist({
    distPath: join(dir, "runners"),
    cacheDir: join(dir, "cache"),
    origins: [origin],
    maxArchiveBytes: 1024 * 1024,
    maxUnpackedBytes: 1024 * 1024,
    retryDelayMs: 1,
    arch: "x64",
    ...over,
  });
}

function publish(path: string, archive: Buffer): { url: string; sha256: string; sizeBytes: number } {
  files.set(path, archive);
  return { url: `${origin}${path}`, sha256: sha(archive), sizeBytes: archive.length };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RunnerDistError) return err.code;
    if (isRejectError(err)) return err.reason;
    throw err;
  }
  return "OK";
}

async function distEntries(): Promise<string[]> {
  return (await readdir(join(dir, "runners")).catch(() => [] as string[])).sort();
}

describe("verified runner downloads", () => {
  it("fetches, verifies and unpacks into a read-only <version>-<sha12> tree, once for two lanes at the same time", async () => {
    const d = publish("/r/actions-runner-linux-x64-2.330.0.tar.gz", tgz(RUNNER));
    const rd = dist();
    const [a, b] = await Promise.all([rd.resolve("2.330.0", d), rd.resolve("2.330.0", d)]);
    expect(a).toBe(join(dir, "runners", distDirName("2.330.0", d.sha256)));
    expect(b).toBe(a);
    expect(requests).toHaveLength(1);
    expect(await readFile(join(a, "run.sh"), "utf8")).toContain("echo run");
    expect((await stat(a)).mode & 0o777).toBe(0o555);
    expect((await stat(join(a, "run.sh"))).mode & 0o222).toBe(0);
    expect((await stat(join(a, "run.sh"))).mode & 0o111).not.toBe(0);
    // A later lane reuses the tree without any request.
    await rd.resolve("2.330.0", d);
    expect(requests).toHaveLength(1);
  });

  it("a wrong checksum unpacks nothing and keeps no partial file", async () => {
    const d = publish("/r/a.tar.gz", tgz(RUNNER));
    expect(await code(dist().resolve("2.330.0", { ...d, sha256: "0".repeat(64) }))).toBe("RUNNER_CHECKSUM_MISMATCH");
    expect(await distEntries()).toEqual([]);
    expect(await readdir(join(dir, "cache"))).toEqual([]);
  });

  it("a size other than the intent's is refused", async () => {
    const d = publish("/r/a.tar.gz", tgz(RUNNER));
    expect(await code(dist().resolve("2.330.0", { ...d, sizeBytes: d.sizeBytes + 1 }))).toBe("RUNNER_CHECKSUM_MISMATCH");
  });

  it("a truncated download is resumed with a Range request", async () => {
    const d = publish("/r/a.tar.gz", tgz(RUNNER));
    let cut = false;
    hook = (req, res, body) => {
      if (cut || req.headers.range) return false;
      cut = true;
      res.writeHead(200, { "content-length": body.length });
      res.write(body.subarray(0, 100));
      setTimeout(() => res.destroy(), 20);
      return true;
    };
    const got = await dist().resolve("2.330.0", d);
    expect(await readFile(join(got, "config.sh"), "utf8")).toContain("config");
    expect(requests.map((r) => r.range)).toEqual([undefined, "bytes=100-"]);
  });

  it("archives over the caps are refused", async () => {
    // Random content does not compress: the archive is well over 1 KiB.
    const d = publish("/r/a.tar.gz", tgz([...RUNNER, { name: "noise", body: randomBytes(3000).toString("base64") }]));
    expect(d.sizeBytes).toBeGreaterThan(2048);
    expect(await code(dist({ maxArchiveBytes: 1024 }).resolve("2.330.0", { ...d, sizeBytes: 0 }))).toBe("RUNNER_ARCHIVE_TOO_LARGE");
    expect(await code(dist({ maxArchiveBytes: 1024 }).resolve("2.330.0", d))).toBe("RUNNER_ARCHIVE_TOO_LARGE");
    expect(await code(dist({ maxUnpackedBytes: 2048 }).resolve("2.330.0", d))).toBe("RUNNER_ARCHIVE_TOO_LARGE");
    expect(await distEntries()).toEqual([]);
  });

  const HOSTILE: [string, Entry][] = [
    ["a '..' traversal", { name: "../evil.sh", body: "x" }],
    ["a nested traversal", { name: "bin/../../evil.sh", body: "x" }],
    ["an absolute path", { name: "/tmp/evil.sh", body: "x" }],
    ["a symlink out of the tree", { name: "bin/escape", type: "2", link: "../../../etc" }],
    ["an absolute symlink", { name: "bin/escape", type: "2", link: "/etc/passwd" }],
    ["a hardlink out of the tree", { name: "bin/passwd", type: "1", link: "/etc/passwd" }],
    ["a hardlink by traversal", { name: "bin/passwd", type: "1", link: "../../etc/passwd" }],
    ["a character device", { name: "bin/null", type: "3" }],
    ["a block device", { name: "bin/sda", type: "4" }],
    ["a FIFO", { name: "bin/fifo", type: "6" }],
  ];

  it.each(HOSTILE)("%s refuses the whole archive", async (_name, bad) => {
    const d = publish("/r/a.tar.gz", tgz([...RUNNER, bad]));
    expect(await code(dist().resolve("2.330.0", d))).toBe("RUNNER_ARCHIVE_UNSAFE");
    expect(await distEntries()).toEqual([]);
    await expect(stat(join(dir, "evil.sh"))).rejects.toThrow();
    await expect(stat("/tmp/evil.sh")).rejects.toThrow();
  });

  it("a file written through an in-tree symlink is refused", async () => {
    const d = publish("/r/a.tar.gz", tgz([...RUNNER, { name: "up", type: "2", link: "bin" }, { name: "up/x", body: "x" }]));
    expect(await code(dist().resolve("2.330.0", d))).toBe("RUNNER_ARCHIVE_UNSAFE");
  });

  it("in-tree links are kept", async () => {
    const d = publish("/r/a.tar.gz", tgz([...RUNNER, { name: "bin/l", type: "2", link: "Runner.Listener" }, { name: "bin/h", type: "1", link: "bin/Runner.Listener" }]));
    const got = await dist().resolve("2.330.0", d);
    expect((await readFile(join(got, "bin/l"), "utf8")).length).toBe(3000);
    expect((await readFile(join(got, "bin/h"), "utf8")).length).toBe(3000);
  });

  it("a redirect is followed only to an allowed origin", async () => {
    const d = publish("/r/a.tar.gz", tgz(RUNNER));
    files.set("/redirect-ok", Buffer.alloc(0));
    files.set("/redirect-evil", Buffer.alloc(0));
    hook = (req, res) => {
      if (req.url === "/redirect-ok") res.writeHead(302, { location: "/r/a.tar.gz" }).end();
      else if (req.url === "/redirect-evil") res.writeHead(302, { location: "http://evil.example/r/a.tar.gz" }).end();
      else return false;
      return true;
    };
    expect(await code(dist().resolve("2.330.0", { ...d, url: `${origin}/redirect-evil` }))).toBe(RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED);
    expect(await code(dist().resolve("2.330.0", { ...d, url: `${origin}/redirect-ok` }))).toBe("OK");
  });

  it("an origin not on the allowlist is never contacted", async () => {
    const d = publish("/r/a.tar.gz", tgz(RUNNER));
    expect(await code(dist({ origins: ["https://github.com"] }).resolve("2.330.0", d))).toBe(RejectReason.DOWNLOAD_ORIGIN_NOT_ALLOWED);
    expect(requests).toEqual([]);
  });

  it("air-gapped: the mirror directory is used, and its file must still match the intent's checksum", async () => {
    const archive = tgz(RUNNER);
    const mirrorDir = join(dir, "mirror");
    await mkdir(mirrorDir);
    const file = join(mirrorDir, "actions-runner-linux-x64-2.330.0.tar.gz");
    const d = { url: "https://github.com/actions/runner/releases/download/v2.330.0/actions-runner-linux-x64-2.330.0.tar.gz", sha256: sha(archive), sizeBytes: 0 };
    await writeFile(file, tgz([...RUNNER, { name: "extra", body: "tampered" }]));
    expect(await code(dist({ mirrorDir, origins: ["https://github.com"] }).resolve("2.330.0", d))).toBe("RUNNER_CHECKSUM_MISMATCH");
    expect(await distEntries()).toEqual([]);
    await writeFile(file, archive);
    expect(await code(dist({ mirrorDir, origins: ["https://github.com"] }).resolve("2.330.0", d))).toBe("OK");
    expect(requests).toEqual([]);
  });

  it("air-gapped: a mirror URL prefix replaces the intent's URL", async () => {
    const archive = tgz(RUNNER);
    files.set("/mirror/actions-runner-linux-x64-2.330.0.tar.gz", archive);
    const d = { url: "https://github.com/x/actions-runner-linux-x64-2.330.0.tar.gz", sha256: sha(archive), sizeBytes: archive.length };
    expect(await code(dist({ mirrorUrlPrefix: `${origin}/mirror/`, origins: ["https://github.com"] }).resolve("2.330.0", d))).toBe("OK");
    expect(requests.map((r) => r.url)).toEqual(["/mirror/actions-runner-linux-x64-2.330.0.tar.gz"]);
  });

  it("an operator-staged <version>/ still works without a download, and is never pruned", async () => {
    const staged = join(dir, "runners", "2.329.0");
    await mkdir(staged, { recursive: true });
    await writeFile(join(staged, "run.sh"), "#!/bin/sh\n");
    await writeFile(join(staged, "config.sh"), "#!/bin/sh\n");
    const rd = dist();
    expect(await rd.resolve("2.329.0", undefined)).toBe(staged);
    expect(await code(rd.resolve("2.328.0", undefined))).toBe(RejectReason.NOT_ALLOWED_ACTION);
    expect(await rd.prune(new Set())).toEqual([]);
    expect(await distEntries()).toEqual(["2.329.0"]);
  });

  it("without a download, the tree verified earlier is used (a rollback to a release GitHub no longer lists)", async () => {
    const rd = dist();
    const a = publish("/r/a.tar.gz", tgz(RUNNER));
    const tree = await rd.resolve("2.330.0", a);
    files.clear();
    expect(await rd.resolve("2.330.0", undefined)).toBe(tree);
    expect(requests).toHaveLength(1);
    // Two different verified archives of one version: no way to choose without the intent's checksum.
    const b = publish("/r/b.tar.gz", tgz([...RUNNER, { name: "other", body: "b" }]));
    await rd.resolve("2.330.0", b);
    expect(await code(rd.resolve("2.330.0", undefined))).toBe(RejectReason.NOT_ALLOWED_ACTION);
  });

  it("prunes versions no lane uses, with their cached archives", async () => {
    const rd = dist();
    const a = publish("/r/a.tar.gz", tgz(RUNNER));
    const b = publish("/r/b.tar.gz", tgz([...RUNNER, { name: "v2", body: "2" }]));
    await rd.resolve("2.330.0", a);
    await rd.resolve("2.331.0", b);
    expect(await rd.prune(new Set(["2.331.0"]))).toEqual([distDirName("2.330.0", a.sha256)]);
    expect(await distEntries()).toEqual([distDirName("2.331.0", b.sha256)]);
    expect(await readdir(join(dir, "cache"))).toEqual([`${b.sha256}.tar.gz`]);
    // A release being copied into a lane is kept even when no record names it yet.
    const again = await rd.resolve("2.330.0", a);
    await rd.using(again, async () => {
      expect(await rd.prune(new Set(["2.331.0"]))).toEqual([]);
    });
  });
});
