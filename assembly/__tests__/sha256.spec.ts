import { HmacSha256, leadingZeroBits, Sha256, toHex } from "../common/lib/sha256";

function hex(s: string): string {
  const d = new Sha256().updateString(s).finish();
  return toHex(d.dataStart, 32);
}

describe("sha256", () => {
  it("matches FIPS 180-4 test vectors", () => {
    expect(hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // Fed in pieces across block boundaries: the same digest.
    const sha = new Sha256();
    const long = "a".repeat(1000);
    for (let i = 0; i < 1000; i++) sha.updateString("a");
    const d = sha.finish();
    expect(toHex(d.dataStart, 32)).toBe(hex(long));
    expect(hex(long)).toBe("41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
  });
  it("HMAC matches RFC 4231 test cases 2 and 6", () => {
    const m = new HmacSha256(String.UTF8.encode("Jefe")).signString("what do ya want for nothing?");
    expect(toHex(m.dataStart, 32)).toBe("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    const key = new Uint8Array(131).fill(0xaa);
    const m6 = new HmacSha256(key.buffer).signString("Test Using Larger Than Block-Size Key - Hash Key First");
    expect(toHex(m6.dataStart, 32)).toBe("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  });
  it("counts leading zero bits", () => {
    const d = new Uint8Array(32);
    expect(leadingZeroBits(d.dataStart)).toBe(256);
    d[1] = 0x10;
    expect(leadingZeroBits(d.dataStart)).toBe(11);
  });
});
