/**
 * Host capabilities for the enrollment bundle and the inventory, from `systeminformation` (arch, cores,
 * memory, disk, GPU) plus the container engine the agent can reach.
 */
import si from "systeminformation";
import type { Capabilities } from "@lanekeeper/shared";

/** Gather capabilities; `containerEngine` is what the agent detected (`podman`, `docker` or empty). */
export async function gatherCapabilities(opts: { containerEngine?: string; diskPath?: string } = {}): Promise<Capabilities> {
  const [os, cpu, mem, fs, gfx] = await Promise.all([
    si.osInfo().catch(() => undefined),
    si.cpu().catch(() => undefined),
    si.mem().catch(() => undefined),
    si.fsSize().catch(() => []),
    si.graphics().catch(() => undefined),
  ]);
  const diskPath = opts.diskPath ?? "/";
  // The filesystem holding diskPath: the longest mount point that prefixes it.
  const disk = [...fs].filter((f) => diskPath === f.mount || diskPath.startsWith(f.mount.endsWith("/") ? f.mount : `${f.mount}/`)).sort((a, b) => b.mount.length - a.mount.length)[0];
  return {
    os: os ? `${os.distro} ${os.release}`.trim() : process.platform,
    arch: os?.arch ?? process.arch,
    cores: cpu?.cores ?? 0,
    memoryBytes: mem?.total ?? 0,
    diskFreeBytes: disk?.available ?? 0,
    containerEngine: opts.containerEngine ?? "",
    gpus: (gfx?.controllers ?? []).map((c) => `${c.vendor} ${c.model}`.trim()).filter((s) => s !== ""),
    kernel: os?.kernel ?? "",
  };
}
