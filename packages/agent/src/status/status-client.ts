/** The client side of the status socket, used by `lanekeeper-agent status`. */
import * as grpc from "@grpc/grpc-js";
import { AgentStatusClient, type AgentStatusReport } from "@lanekeeper/shared";
import { StatusUnavailableError } from "../errors.js";
import { STATUS_CALL_DEADLINE_MS } from "../limits.js";

/** Ask the agent on `socketPath` for its status, with a deadline. */
export async function fetchStatus(socketPath: string, opts: { auditTail: number; deadlineMs?: number }): Promise<AgentStatusReport> {
  const client = new AgentStatusClient(`unix:${socketPath}`, grpc.credentials.createInsecure(), {
    // Reports grow with lanes and audit records; still bounded.
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
  });
  try {
    return await new Promise<AgentStatusReport>((resolve, reject) => {
      const deadline = new Date(Date.now() + (opts.deadlineMs ?? STATUS_CALL_DEADLINE_MS));
      client.getStatus({ auditTail: opts.auditTail }, new grpc.Metadata(), { deadline }, (err, res) => {
        if (err) {
          const why =
            err.code === grpc.status.UNAVAILABLE
              ? `no agent answers on ${socketPath} (is lanekeeper-agent running, and are you root or in group lanekeeper?)`
              : err.code === grpc.status.DEADLINE_EXCEEDED
                ? `the agent on ${socketPath} did not answer in time`
                : `the agent on ${socketPath} answered with an error: ${err.details}`;
          reject(new StatusUnavailableError(why, { cause: err }));
        } else resolve(res);
      });
    });
  } finally {
    client.close();
  }
}
