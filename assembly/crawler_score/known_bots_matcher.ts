// isbot's known-bot patterns (known_bots.ts, generated) as one linear-time matcher. Its verdicts are
// cached with the rest of a user agent's class (AgentLists.classify).
import { RegexVm } from "../common/lib/regex_vm";
import {
  KNOWN_BOTS_ANCHORED_IDS, KNOWN_BOTS_ANCHORED_OFFSETS, KNOWN_BOTS_CLASSES, KNOWN_BOTS_CODE, KNOWN_BOTS_FREE_IDS,
  KNOWN_BOTS_FREE_OFFSETS, KNOWN_BOTS_LITERALS, KNOWN_BOTS_PREFIXES, KNOWN_BOTS_STARTS,
} from "./known_bots";

export class KnownBots {
  private vm: RegexVm = new RegexVm(KNOWN_BOTS_CODE, KNOWN_BOTS_CLASSES, KNOWN_BOTS_LITERALS, KNOWN_BOTS_STARTS, KNOWN_BOTS_PREFIXES,
    KNOWN_BOTS_FREE_OFFSETS, KNOWN_BOTS_FREE_IDS, KNOWN_BOTS_ANCHORED_OFFSETS, KNOWN_BOTS_ANCHORED_IDS);

  /** Whether the `len` bytes at `ptr` match a known-bot pattern (about 10 µs: AgentLists caches verdicts). */
  matches(ptr: usize, len: i32): bool { return this.vm.matches(ptr, len); }

  /** The same, by name, for tests and the evaluation. */
  scan(ptr: usize, len: i32): bool { return this.vm.matches(ptr, len); }
}

export const knownBots = new KnownBots();
