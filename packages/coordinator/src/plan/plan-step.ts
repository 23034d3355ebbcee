// Its own file: actions and guards both name steps, and neither should import the other for it.

/**
 * The steps apply executes, in order, for each action (see `STEPS` in `steps.ts`). Each step is one
 * idempotent unit: a crash between steps resumes at the first step whose effect is not yet visible.
 *
 * - `write-record` / `delete-record`: compare-and-set on the lane store (revision from the guard).
 * - `set-draining-labels`: GitHub custom labels := identity labels + `lk-draining`.
 * - `restore-labels`: GitHub custom labels := canonical labels.
 * - `send-*`: a signed intent to the lane's host (`send-create`, `send-drain`, ...), then wait for its signed
 *   result; a rejection stops the action and leaves the lane as the last completed step left it.
 * - `wait-idle`: the drain wait: no `Runner.Worker` on the host AND GitHub not busy, across a settle window; a
 *   404 or an error is never idle; the deadline turns into `needs-attention`, never into a kill.
 * - `mint-registration`: registration token (persistent) or JIT config (ephemeral, and for `arm`), sealed to
 *   the host.
 * - `mint-remove-token`: a remove token, sealed to the host.
 * - `delete-registration`: `deleteRunner` (runner id from the guard).
 * - `verify-online`: GitHub shows the registration online with the canonical labels.
 * - `verify-gone`: neither GitHub nor the host shows the lane any more.
 * - `send-upgrade`: an `UpgradeLane` intent (new runner version and its download, or image) to a drained lane.
 * - `verify-upgraded`: the host's inventory, taken after the upgrade, reports the lane running the new version,
 *   and GitHub shows its registration online (with that version when GitHub reports one).
 */
export type PlanStep =
  | "write-record"
  | "delete-record"
  | "set-draining-labels"
  | "restore-labels"
  | "set-labels"
  | "mint-registration"
  | "mint-remove-token"
  | "send-create"
  | "send-drain"
  | "send-undrain"
  | "send-arm"
  | "send-restart"
  | "send-remove"
  | "send-upgrade"
  | "wait-idle"
  | "delete-registration"
  | "verify-online"
  | "verify-gone"
  | "verify-upgraded"
  | "verify-labels";
