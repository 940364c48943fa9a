// isbot's known-bot patterns (known_bots.ts, generated) as one linear-time matcher, with a per-VM cache
// of recent verdicts: real traffic repeats a few thousand user agents, so most requests skip the scan.
import { RegexVm } from "../common/regex_vm";
import { keyHash } from "../common/hash";
import {
  KNOWN_BOTS_ANCHORED_IDS, KNOWN_BOTS_ANCHORED_OFFSETS, KNOWN_BOTS_CLASSES, KNOWN_BOTS_CODE, KNOWN_BOTS_FREE_IDS,
  KNOWN_BOTS_FREE_OFFSETS, KNOWN_BOTS_LITERALS, KNOWN_BOTS_PREFIXES, KNOWN_BOTS_STARTS,
} from "./known_bots";

const CACHE_SLOTS = 512;

export class KnownBots {
  private vm: RegexVm = new RegexVm(KNOWN_BOTS_CODE, KNOWN_BOTS_CLASSES, KNOWN_BOTS_LITERALS, KNOWN_BOTS_STARTS, KNOWN_BOTS_PREFIXES,
    KNOWN_BOTS_FREE_OFFSETS, KNOWN_BOTS_FREE_IDS, KNOWN_BOTS_ANCHORED_OFFSETS, KNOWN_BOTS_ANCHORED_IDS);
  /** Direct-mapped by hash: the user agent's bytes (compared in full) and its verdict. */
  private keys: Array<ArrayBuffer | null> = new Array<ArrayBuffer | null>(CACHE_SLOTS);
  private verdicts: Uint8Array = new Uint8Array(CACHE_SLOTS);

  /** Whether the `len` bytes at `ptr` match a known-bot pattern. */
  matches(ptr: usize, len: i32): bool {
    const slot = <i32>(keyHash(ptr, len) & (CACHE_SLOTS - 1));
    const cached = unchecked(this.keys[slot]);
    if (cached !== null && cached.byteLength == len && memory.compare(changetype<usize>(cached), ptr, len) == 0) {
      return unchecked(this.verdicts[slot]) != 0;
    }
    const verdict = this.vm.matches(ptr, len);
    // Only user agents of ordinary length are kept, so the cache stays small.
    if (len <= 512) {
      const copy = new ArrayBuffer(len);
      memory.copy(changetype<usize>(copy), ptr, len);
      this.keys[slot] = copy;
      unchecked(this.verdicts[slot] = verdict ? 1 : 0);
    }
    return verdict;
  }

  /** The matcher alone, without the cache: for tests and the evaluation. */
  scan(ptr: usize, len: i32): bool { return this.vm.matches(ptr, len); }
}

export const knownBots = new KnownBots();
