// Binary prefix trie over IPv4 and IPv6 CIDRs. Lookup walks at most 32 or 128 nodes,
// whatever the list size. Nodes live in flat arrays: no per-node objects for the GC to track.
import { Cidr, IpAddr, parseCidr } from "./ip";

const NONE: i32 = 0;

class BitTrie {
  // kids[2n] / kids[2n+1]: child index for bit 0 / 1 (0 = none; node 0 is the root).
  kids: i32[] = [0, 0];
  terminal: bool[] = [false];

  get nodeCount(): i32 { return this.terminal.length; }

  insert(addr: IpAddr, prefix: i32): void {
    let node = 0;
    for (let i = 0; i < prefix; i++) {
      if (this.terminal[node]) return; // a shorter prefix already covers this one
      const slot = 2 * node + addr.bit(i);
      let next = this.kids[slot];
      if (next == NONE) {
        next = this.terminal.length;
        this.terminal.push(false);
        this.kids.push(0);
        this.kids.push(0);
        this.kids[slot] = next;
      }
      node = next;
    }
    this.terminal[node] = true;
  }

  contains(addr: IpAddr): bool {
    let node = 0;
    const bits = addr.bits;
    for (let i = 0; i < bits; i++) {
      if (unchecked(this.terminal[node])) return true;
      node = unchecked(this.kids[2 * node + addr.bit(i)]);
      if (node == NONE) return false;
    }
    return unchecked(this.terminal[node]);
  }
}

export class CidrTrie {
  private v4: BitTrie = new BitTrie();
  private v6: BitTrie = new BitTrie();
  size: i32 = 0;

  /** Adds a CIDR; returns false (and adds nothing) when it does not parse. */
  add(cidr: string): bool {
    const c = scratchCidr;
    if (!parseCidr(cidr.trim(), c)) return false;
    this.insert(c);
    return true;
  }

  insert(c: Cidr): void {
    if (c.addr.v6) this.v6.insert(c.addr, c.prefix);
    else this.v4.insert(c.addr, c.prefix);
    this.size++;
  }

  contains(addr: IpAddr): bool {
    if (addr.v6) return this.v6.contains(addr);
    return this.v4.contains(addr);
  }

  get nodeCount(): i32 { return this.v4.nodeCount + this.v6.nodeCount; }
}

const scratchCidr = new Cidr();
