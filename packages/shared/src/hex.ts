/** Whether `s` is a SHA-256 written the one way the wire accepts: 64 lower-case hex characters. */
export function isSha256Hex(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}
