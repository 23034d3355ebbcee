/**
 * Oversized webhook bodies, over real HTTP: a declared `Content-Length` over the cap is answered 413 before any of
 * the body is read, a chunked body that grows past the cap is cut off with 413, and neither reaches the store. A
 * body exactly at the cap goes through.
 */
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { receiverWorld, sign, workflowJobPayload } from "./webhook-fixture.js";

const MAX = 4096;
let close: (() => Promise<void>) | undefined;

afterEach(async () => {
  await close?.();
  close = undefined;
});

async function serve() {
  const w = receiverWorld({ maxBodyBytes: MAX });
  const s = await w.receiver.listen("127.0.0.1:0");
  close = s.close;
  return { ...w, port: s.port };
}

/** POST `chunks` (chunked when `length` is not given); answers the status, or the socket error if none came. */
function post(port: number, chunks: Buffer[], headers: Record<string, string>, length?: number): Promise<{ status?: number; bytesSent: number }> {
  return new Promise((resolve) => {
    let bytesSent = 0;
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/github/webhook", headers: { ...headers, ...(length === undefined ? {} : { "content-length": String(length) }) } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, bytesSent }));
    });
    req.on("error", () => resolve({ bytesSent }));
    const write = (i: number): void => {
      if (i >= chunks.length) {
        req.end();
        return;
      }
      const c = chunks[i] as Buffer;
      bytesSent += c.length;
      if (req.write(c)) setImmediate(() => write(i + 1));
      else req.once("drain", () => write(i + 1));
    };
    write(0);
  });
}

function signed(body: Buffer): Record<string, string> {
  return { "content-type": "application/json", "x-github-event": "workflow_job", "x-github-delivery": "d-1", "x-hub-signature-256": sign(body) };
}

describe("webhook: body size cap", () => {
  it("a declared Content-Length one byte over the cap: 413 before the body is read, nothing stored", async () => {
    const w = await serve();
    const pad = JSON.stringify(workflowJobPayload("queued"));
    const body = Buffer.from(pad + " ".repeat(MAX + 1 - pad.length));
    expect(body.length).toBe(MAX + 1);
    // Only the headers are sent: a receiver that waited for the body would never answer.
    const r = await post(w.port, [], signed(body), body.length);
    expect(r.status).toBe(413);
    expect(w.results).toEqual([{ result: "rejected", reason: "too-large" }]);
    expect(await w.jobs.list()).toEqual([]);
  });

  it("a chunked body that grows past the cap is cut off with 413, nothing stored", async () => {
    const w = await serve();
    const chunk = Buffer.alloc(1024, 0x20);
    const r = await post(w.port, Array.from({ length: 64 }, () => chunk), { ...signed(chunk), "transfer-encoding": "chunked" });
    if (r.status !== undefined) expect(r.status).toBe(413);
    // Whether or not the client saw the answer before the socket closed, the receiver stopped reading.
    expect(w.results).toEqual([{ result: "rejected", reason: "too-large" }]);
    expect(await w.jobs.list()).toEqual([]);
  });

  it("a body exactly at the cap is accepted", async () => {
    const w = await serve();
    const pad = JSON.stringify(workflowJobPayload("queued"));
    const body = Buffer.from(pad + " ".repeat(MAX - pad.length));
    const r = await post(w.port, [body], signed(body), body.length);
    expect(r.status).toBe(200);
    expect((await w.jobs.get(1001))?.status).toBe("queued");
  });
});
