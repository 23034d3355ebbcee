/**
 * Looking up local users and groups from `/etc/passwd` and `/etc/group` (no NSS: the agent needs only local
 * accounts, and a lookup must never hang on a directory service).
 */
import { readFile } from "node:fs/promises";
import { AgentStateError } from "../errors.js";

/** A local account. */
export interface UserAccount {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** Look up a local user by name. Throws when it does not exist. */
export async function lookupUser(name: string, passwdPath = "/etc/passwd"): Promise<UserAccount> {
  const text = await readFile(passwdPath, "utf8");
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 7) {
      const uid = Number.parseInt(f[2] ?? "", 10);
      const gid = Number.parseInt(f[3] ?? "", 10);
      if (Number.isSafeInteger(uid) && Number.isSafeInteger(gid)) return { name, uid, gid, home: f[5] ?? "/" };
    }
  }
  throw new AgentStateError(`user ${JSON.stringify(name)} does not exist on this host (runAsUser); create it or change the config`);
}

/** The gid of a local group, or `undefined` when it does not exist. */
export async function lookupGroupId(name: string, groupPath = "/etc/group"): Promise<number | undefined> {
  const text = await readFile(groupPath, "utf8").catch(() => "");
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name) {
      const gid = Number.parseInt(f[2] ?? "", 10);
      if (Number.isSafeInteger(gid)) return gid;
    }
  }
  return undefined;
}
