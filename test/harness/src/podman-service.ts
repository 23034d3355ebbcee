import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { chmod, copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { dirname, join } from "node:path";
import { LauncherError } from "./launcher-error.js";
import { PODMAN_START_TIMEOUT_MS, PODMAN_STOP_GRACE_MS } from "./launcher-limits.js";
import {
  dieWithParent,
  forgetOnExit,
  killOnExit,
  makeTempDir,
  readTail,
  runCommand,
  spawnChild,
  terminate,
  waitUntil,
} from "./process-util.js";

/** Options of {@link startPodmanService}. */
export interface PodmanServiceOptions {
  /** Binary to run. @default "podman" */
  binary?: string;
  /** Parent of the temp directory holding the socket and log. @default os.tmpdir() */
  baseDir?: string;
  /** How long to wait for GET /_ping to answer OK. @default PODMAN_START_TIMEOUT_MS */
  startTimeoutMs?: number;
  /** podman's --log-level. @default "warn" */
  logLevel?: "debug" | "info" | "warn" | "error";
}

/** A running `podman system service`, serving the Docker Engine API (and podman's libpod API) on a socket. */
export interface PodmanService {
  /** Path of the API socket. */
  socketPath: string;
  /** `unix://<socketPath>`, for DOCKER_HOST or a dockerode `socketPath`. */
  dockerHost: string;
  /** Temp directory of socket and log; removed by stop(). */
  dir: string;
  /** The service's log (conmon's net_cls warning lands here; it is harmless). */
  logPath: string;
  /** PID of the service. */
  pid: number;
  /**
   * Stops the service (SIGTERM, SIGKILL after a grace period) and removes its directory. Containers it
   * started keep running under conmon: tests remove their own containers. Idempotent.
   */
  stop(): Promise<void>;
}

/**
 * Starts `podman system service --time=0 unix://<tmp>/podman.sock` (the machine's storage and
 * /etc/containers/containers.conf, so locally built images are there) and resolves once GET /_ping on the
 * socket answers `OK`.
 */
export async function startPodmanService(opts: PodmanServiceOptions = {}): Promise<PodmanService> {
  const dir = await makeTempDir("lk-podman-", opts.baseDir);
  const socketPath = join(dir, "podman.sock");
  const logPath = join(dir, "podman-service.log");
  const binary = opts.binary ?? "podman";
  let child: ChildProcess | undefined;
  try {
    const logFd = openSync(logPath, "a");
    try {
      const argv = dieWithParent(binary, [
        `--log-level=${opts.logLevel ?? "warn"}`,
        "system",
        "service",
        "--time=0",
        `unix://${socketPath}`,
      ]);
      child = spawnChild(argv.cmd, argv.args, { stdio: ["ignore", logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    const proc = child;
    let spawnError: Error | undefined;
    proc.once("error", (e) => {
      spawnError = e;
    });
    if (proc.pid === undefined) throw new LauncherError("LAUNCH_FAILED", `cannot run ${binary}`);
    killOnExit(proc.pid);
    await waitUntil(async () => (await ping(socketPath)) === "OK", {
      timeoutMs: opts.startTimeoutMs ?? PODMAN_START_TIMEOUT_MS,
      what: `podman's API on ${socketPath} to answer /_ping`,
      abort: () => {
        if (spawnError) return `cannot run ${binary}: ${spawnError.message}`;
        if (proc.exitCode !== null || proc.signalCode !== null) {
          return `podman system service exited (code ${proc.exitCode}, signal ${proc.signalCode})`;
        }
        return undefined;
      },
      diagnostics: async () => `podman log tail:\n${await readTail(logPath, 2000)}`,
    });
    let stopped = false;
    const pid = proc.pid;
    return {
      socketPath,
      dockerHost: `unix://${socketPath}`,
      dir,
      logPath,
      pid,
      async stop() {
        if (stopped) return;
        stopped = true;
        await terminate(proc, { signal: "SIGTERM", graceMs: PODMAN_STOP_GRACE_MS });
        forgetOnExit(pid);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (child) {
      await terminate(child, { signal: "SIGKILL" });
      if (child.pid !== undefined) forgetOnExit(child.pid);
    }
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** GET /_ping on a unix socket: the body ("OK") or undefined. */
function ping(socketPath: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", method: "GET", timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(res.statusCode === 200 ? body.trim() : undefined));
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

/** Options of {@link ensureMinimalImage}. */
export interface MinimalImageOptions {
  /** Programs (absolute paths) copied into the image with the libraries `ldd` lists. */
  programs?: readonly string[];
  /** Repository part of the reference. @default "localhost/lanekeeper/minimal" */
  repository?: string;
}

/** Programs of the default minimal image: enough for a shell script that runs, prints and sleeps. */
export const MINIMAL_IMAGE_PROGRAMS: readonly string[] = [
  "/bin/sh",
  "/bin/sleep",
  "/bin/cat",
  "/bin/echo",
  "/bin/ls",
  "/bin/true",
  "/bin/false",
  "/usr/bin/env",
  "/usr/bin/id",
];

/**
 * Makes (once) a small local image from the host's own binaries and their shared libraries, via
 * `podman import` of a rootfs tarball: no registry needed. The tag is a hash of the files, so a second call,
 * from any test process, reuses the image. Returns the image reference.
 */
export async function ensureMinimalImage(opts: MinimalImageOptions = {}): Promise<string> {
  const programs = opts.programs ?? MINIMAL_IMAGE_PROGRAMS;
  const files = new Set<string>();
  for (const p of programs) {
    files.add(p);
    const ldd = await runCommand("ldd", [p]);
    // Lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)".
    for (const m of ldd.stdout.matchAll(/(\/[^\s()]+)/g)) if (m[1] !== undefined) files.add(m[1]);
  }
  const sorted = [...files].sort();
  const hash = createHash("sha256");
  for (const f of sorted) hash.update(f).update("\0").update(await readFile(f));
  const ref = `${opts.repository ?? "localhost/lanekeeper/minimal"}:${hash.digest("hex").slice(0, 16)}`;
  if ((await runCommand("podman", ["image", "exists", ref])).code === 0) return ref;

  const work = await makeTempDir("lk-minimal-image-");
  try {
    const rootfs = join(work, "rootfs");
    for (const f of sorted) {
      const target = join(rootfs, f);
      await mkdir(dirname(target), { recursive: true });
      await copyFile(f, target); // follows symlinks: the image gets the real file at the path programs use
      await chmod(target, 0o755);
    }
    await mkdir(join(rootfs, "tmp"), { recursive: true });
    await chmod(join(rootfs, "tmp"), 0o1777);
    await mkdir(join(rootfs, "etc"), { recursive: true });
    await writeFile(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
    await writeFile(join(rootfs, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
    const tar = join(work, "rootfs.tar");
    const t = await runCommand("tar", ["-C", rootfs, "-cf", tar, "."]);
    if (t.code !== 0) throw new LauncherError("COMMAND_FAILED", `tar failed: ${t.stderr.trim()}`);
    const imp = await runCommand("podman", ["import", "--change", 'CMD ["/bin/sh"]', tar, ref], { timeoutMs: 120_000 });
    if (imp.code !== 0) throw new LauncherError("COMMAND_FAILED", `podman import failed: ${imp.stderr.trim()}`);
    return ref;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
