/**
 * The read-only `AgentStatus` gRPC service on a unix socket. The socket directory is 0750 and the socket 0660,
 * both group `lanekeeper` when that group exists (else root), so operators in that group can run
 * `lanekeeper-agent status` without root. There is no mutating RPC: holds are placed through the state
 * directory, which only root can write. Requests are tiny; the receive limit is set far below grpc-js' default.
 */
import { chmod, chown, lstat, mkdir, unlink } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { type AgentStatusReport, AgentStatusService, type GetStatusRequest, MAX_AUDIT_TAIL, MAX_GRPC_MESSAGE_BYTES } from "@lanekeeper/shared";
import type { AgentLog } from "../audit-sink.js";
import { silentLog } from "../audit-sink.js";
import { RuntimeError } from "../errors.js";
import { lookupGroupId } from "../lanes/user-account.js";

/** Options of {@link StatusServer.start}. */
export interface StatusServerOptions {
  /** Absolute path of the socket, e.g. `/run/lanekeeper/build01/agent.sock`. */
  readonly socketPath: string;
  /** Group that may read the socket. @default "lanekeeper" */
  readonly group?: string;
  /** Builds the report; `auditTail` is already capped. */
  readonly report: (auditTail: number) => Promise<AgentStatusReport>;
  readonly log?: AgentLog;
}

/** Directories the socket must never be put in directly (their mode must not be changed). */
const SHARED_DIRS = new Set(["/", "/run", "/var/run", "/tmp", "/var/tmp", "/var", "/var/lib", "/etc"]);

/** `first` and each directory below it down to `dir` (what a recursive mkdir created). */
function createdDirs(first: string, dir: string): string[] {
  const out = [first];
  for (const part of relative(first, dir).split(sep).filter((p) => p !== "")) out.push(join(out[out.length - 1] ?? first, part));
  return out;
}

/** A running status server. */
export class StatusServer {
  private constructor(
    private readonly server: grpc.Server,
    readonly socketPath: string,
  ) {}

  /** Prepare the directory, bind the socket, set its mode and group, and serve. */
  static async start(opts: StatusServerOptions): Promise<StatusServer> {
    const log = opts.log ?? silentLog;
    const dir = dirname(opts.socketPath);
    if (SHARED_DIRS.has(dir)) throw new RuntimeError(`put the status socket in its own directory (e.g. /run/lanekeeper/<hostId>/agent.sock), not in ${dir}`);
    const gid = (await lookupGroupId(opts.group ?? "lanekeeper")) ?? 0;
    // The default socket sits one level down (/run/lanekeeper/<hostId>/): every directory made here gets the
    // socket's group, or operators in it could not get through the parent.
    const first = await mkdir(dir, { recursive: true, mode: 0o750 });
    for (const made of first === undefined ? [] : createdDirs(first, dir)) await chown(made, 0, gid).catch(() => undefined);
    await chmod(dir, 0o750);
    await chown(dir, 0, gid).catch(() => undefined);
    const old = await lstat(opts.socketPath).catch(() => undefined);
    if (old) {
      if (!old.isSocket()) throw new RuntimeError(`${opts.socketPath} exists and is not a socket; remove it`);
      await unlink(opts.socketPath);
    }
    const server = new grpc.Server({
      "grpc.max_receive_message_length": MAX_GRPC_MESSAGE_BYTES,
      "grpc.max_concurrent_streams": 16,
    });
    server.addService(AgentStatusService, {
      getStatus: (call: grpc.ServerUnaryCall<GetStatusRequest, AgentStatusReport>, cb: grpc.sendUnaryData<AgentStatusReport>) => {
        const tail = Math.min(call.request.auditTail, MAX_AUDIT_TAIL);
        opts.report(tail).then(
          (r) => cb(null, r),
          (err: unknown) => {
            log.error({ err: err instanceof Error ? err.message : String(err) }, "status report failed");
            cb({ code: grpc.status.INTERNAL, details: "the agent could not build its status; see its log" });
          },
        );
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${opts.socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    await chmod(opts.socketPath, 0o660);
    await chown(opts.socketPath, 0, gid).catch(() => undefined);
    log.info({ socket: opts.socketPath }, "status socket ready");
    return new StatusServer(server, opts.socketPath);
  }

  /** Stop serving and remove the socket. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    await unlink(this.socketPath).catch(() => undefined);
  }
}
