/**
 * Tunables of the agent's intake, inventory publisher and replay state. Protocol limits (envelope size, TTL,
 * skew, recent-results cap) live in `@lanekeeper/shared`'s `limits.ts`; these are local defaults.
 */

/** Version of the replay state file's JSON layout. */
export const REPLAY_STATE_FORMAT_VERSION = 1;
/** Largest replay state file read back (1024 cached results of a few hundred bytes each fit easily). */
export const MAX_REPLAY_STATE_BYTES = 8 * 1024 * 1024;
/** File name of the replay state inside the agent's state directory. */
export const REPLAY_STATE_FILE = "replay-state.json";
/** File name of the replay journal (changes since the last snapshot) inside the agent's state directory. */
export const REPLAY_JOURNAL_FILE = "replay-state.journal";
/** Journal lines after which the replay store writes a full snapshot and empties the journal. */
export const REPLAY_JOURNAL_MAX_LINES = 4096;
/**
 * How long a recorded result may wait before it is written on its own. Results need no flush before the reply
 * (losing one in a crash only turns a later duplicate's cached answer into a refusal), so they ride along with
 * the next reservation's write when intents keep coming.
 */
export const REPLAY_LAZY_FLUSH_MS = 50;
/** Default interval between two inventory snapshots when nothing changes. */
export const DEFAULT_INVENTORY_INTERVAL_MS = 5_000;
/** Shortest gap between two change-triggered snapshots, so a burst of intents yields one snapshot. */
export const INVENTORY_CHANGE_DEBOUNCE_MS = 200;
/** Longest short message put into a result (human text only; never stderr). */
export const MAX_RESULT_MESSAGE_CHARS = 256;
/** Largest encoded signed key-set update accepted on the key-set subject. */
export const MAX_KEYSET_UPDATE_BYTES = 64 * 1024;
