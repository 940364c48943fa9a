import { HostCalls } from "../common/request/stage";
import { descriptorValue, FleetCount, FleetCounts, FleetSpec, fleetUnit, KIND_CLEARANCE, KIND_CLIENT, KIND_NETWORK, MAX_ENTRIES } from "../crawler_score/fleet";
import { ACTIVITY_PAYLOAD, distinctFromBits, fleetDistinct, FleetUpdate } from "../crawler_score/signals";

/** HostCalls in memory: the last call's body, and whether the host takes calls at all. */
class Calls extends HostCalls {
  refuse: bool = false;
  bodies: string[] = [];
  post(cluster: string, path: string, contentType: string, body: string, timeoutMs: u32): u32 {
    if (this.refuse) return 0;
    this.bodies.push(body);
    return <u32>this.bodies.length;
  }
}

const LONG: i64 = 600000;
const NOW: i64 = 1700000000000;

function counts(calls: Calls): FleetCounts {
  const spec = new FleetSpec();
  spec.cluster = "graywall_ratelimit_http";
  return new FleetCounts(spec, calls, LONG);
}

function key(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

describe("fleet counts", () => {
  it("sends one descriptor per key counted since the last tick, with its count as hits_addend, in the unit that holds the window", () => {
    const calls = new Calls();
    const f = counts(calls);
    const a = key("ab");
    f.add(KIND_CLIENT, changetype<usize>(a), a.byteLength, 3, NOW);
    f.add(KIND_NETWORK, changetype<usize>(a), a.byteLength, 0, NOW); // nothing new: not sent
    f.send();
    expect(calls.bodies.length).toBe(1);
    const index = (NOW / LONG).toString();
    expect(calls.bodies[0]).toBe(
      '{"domain":"graywall","descriptors":[{"entries":[{"key":"graywall_crawler","value":"hour"},{"key":"graywall_key","value":"i6162-' + index + '"}],"hitsAddend":3}]}',
    );
    f.send();
    expect(calls.bodies.length).toBe(1, "nothing new: no call");
    expect(fleetUnit(30000)).toBe("minute");
    expect(fleetUnit(3600000)).toBe("hour");
    expect(fleetUnit(7200000)).toBe("day");
  });

  it("reads each key's fleet-wide count from what the service says remains; 429 answers count too; another stage's token is not ours", () => {
    const calls = new Calls();
    const f = counts(calls);
    const a = key("a");
    const b = key("b");
    f.add(KIND_CLIENT, changetype<usize>(a), 1, 1, NOW);
    f.add(KIND_CLIENT, changetype<usize>(b), 1, 2, NOW);
    f.send();
    expect(f.take(99, 200, "{}")).toBeNull();
    const got = f.take(1, 429, '{"overallCode":"OVER_LIMIT","statuses":[{"code":"OK","limitRemaining":999999850},{"code":"OVER_LIMIT"}]}')!;
    expect(got.length).toBe(2);
    expect(got[0].count).toBe(150);
    expect(got[1].count).toBe(1000000000, "no limitRemaining: none left");
    expect(f.failed).toBe(0);
  });

  it("a failed or unreadable answer is counted and backed off from, doubling; the counts made meanwhile wait, none lost", () => {
    const calls = new Calls();
    const f = counts(calls);
    const a = key("a");
    f.add(KIND_CLIENT, changetype<usize>(a), 1, 1, NOW);
    f.send();
    expect(f.take(1, 0, null)!.length).toBe(0);
    f.add(KIND_CLIENT, changetype<usize>(a), 1, 1, NOW);
    f.send();
    expect(calls.bodies.length).toBe(1, "one tick of waiting");
    f.send();
    expect(calls.bodies.length).toBe(2);
    expect(f.take(2, 200, "not json")!.length).toBe(0);
    f.add(KIND_CLIENT, changetype<usize>(a), 1, 1, NOW);
    f.send();
    f.send();
    expect(calls.bodies.length).toBe(2, "two ticks now");
    f.send();
    expect(calls.bodies.length).toBe(3);
    expect(f.failed).toBe(2);
  });

  it("a host without the cluster refuses the first call: fleet counts are off, nothing more is counted", () => {
    const calls = new Calls();
    calls.refuse = true;
    const f = counts(calls);
    const a = key("a");
    f.add(KIND_CLIENT, changetype<usize>(a), 1, 1, NOW);
    f.send();
    expect(f.enabled).toBe(false);
    f.add(KIND_CLIENT, changetype<usize>(a), 1, 1, NOW);
    expect(f.pending).toBe(0);
    expect(f.failed).toBe(1);
  });

  it("the same key counted again before the tick is one descriptor", () => {
    const calls = new Calls();
    const f = counts(calls);
    const a = key("a");
    for (let i = 0; i < 3; i++) f.add(KIND_CLEARANCE, changetype<usize>(a), 1, 1, NOW);
    expect(f.pending).toBe(1);
    f.send();
    expect(calls.bodies[0].includes('"hitsAddend":3')).toBe(true);
  });

  it("a full batch drops what does not fit and says so", () => {
    const f = counts(new Calls());
    for (let i = 0; i < MAX_ENTRIES + 5; i++) {
      const a = key("k" + i.toString());
      f.add(KIND_CLIENT, changetype<usize>(a), a.byteLength, 1, NOW);
    }
    expect(f.pending).toBe(MAX_ENTRIES);
    expect(f.dropped).toBe(5);
  });

  it("a key's descriptor value: kind, hex bytes, window", () => {
    const c = new FleetCount();
    c.kind = KIND_NETWORK;
    c.key = key("\x04\xff");
    c.index = 7;
    expect(descriptorValue(c)).toBe("n04c3bf-7"); // "\xff" is U+00FF: two UTF-8 bytes
  });
});

describe("fleet counts in a record", () => {
  it("slides over two fixed windows; answers out of order never lower a count; an older window's answer lands in the previous one", () => {
    const p = changetype<usize>(new ArrayBuffer(ACTIVITY_PAYLOAD));
    const u = new FleetUpdate();
    const index = NOW / LONG;
    u.index = index;
    u.count = 100;
    u.apply(p, true, NOW);
    u.count = 80; // an older answer arriving late
    u.apply(p, false, NOW);
    const start = index * LONG;
    expect(fleetDistinct(p, start, LONG)).toBe(100);
    // Half the next window in: this window's count (none yet) and half the previous one's.
    expect(fleetDistinct(p, start + LONG + LONG / 2, LONG)).toBe(50);
    u.index = index + 1;
    u.count = 20;
    u.apply(p, false, start + LONG + LONG / 2);
    expect(fleetDistinct(p, start + LONG + LONG / 2, LONG)).toBe(70);
    u.index = index;
    u.count = 120; // the previous window's last answer
    u.apply(p, false, start + LONG + LONG / 2);
    expect(fleetDistinct(p, start + LONG + LONG / 2, LONG)).toBe(80);
    expect(fleetDistinct(p, start + 5 * LONG, LONG)).toBe(0, "a stale count says nothing");
  });

  it("distinct pages from path bits: linear counting, so the bits' collisions are not an undercount", () => {
    expect(distinctFromBits(0)).toBe(0);
    expect(distinctFromBits(1)).toBe(1);
    // 150 pages set about 130 of 512 bits.
    expect(distinctFromBits(130)).toBe(150);
  });
});
