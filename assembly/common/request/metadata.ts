// Reads one string out of a serialized envoy.config.core.v3.Metadata (what the host returns for
// `xds.upstream_host_metadata`): filter_metadata[namespace].fields[key].string_value. A minimal
// protobuf walk over the bytes; anything malformed reads as absent. Pure.

/** Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
class Field {
  number: u32 = 0;
  wire: u32 = 0;
  /** For wire type 2: where the payload starts and how long it is. */
  start: i32 = 0;
  length: i32 = 0;
}

const field = new Field();

/** Reads the varint at p (< end); returns the position after it, or -1. */
function varint(base: usize, p: i32, end: i32, out: Field, isTag: bool): i32 {
  let v: u64 = 0;
  let shift: u64 = 0;
  while (p < end && shift < 64) {
    const b = <u64>load<u8>(base + <usize>p);
    p++;
    v |= (b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      if (isTag) {
        out.number = <u32>(v >> 3);
        out.wire = <u32>(v & 7);
      } else {
        out.length = v > <u64>0x7fffffff ? -1 : <i32>v;
      }
      return p;
    }
    shift += 7;
  }
  return -1;
}

/** The next field at p: fills `field`, returns the position after it, or -1 when malformed. */
function next(base: usize, p: i32, end: i32): i32 {
  p = varint(base, p, end, field, true);
  if (p < 0) return -1;
  const w = field.wire;
  if (w == 0) {
    p = varint(base, p, end, field, false);
    return p;
  }
  if (w == 1) return p + 8 <= end ? p + 8 : -1;
  if (w == 5) return p + 4 <= end ? p + 4 : -1;
  if (w != 2) return -1;
  p = varint(base, p, end, field, false);
  if (p < 0 || field.length < 0 || p + field.length > end) return -1;
  field.start = p;
  return p + field.length;
}

/** Whether bytes [start, start+len) equal `s` (ASCII). */
function equals(base: usize, start: i32, len: i32, s: string): bool {
  if (len != s.length) return false;
  for (let i = 0; i < len; i++) if (<i32>load<u8>(base + <usize>(start + i)) != s.charCodeAt(i)) return false;
  return true;
}

/**
 * In a run of map entries (field `entryField`, each {1: key, 2: value}) within [p, end), the value of the
 * entry whose key is `key`: its start in `field.start`/`field.length`. False when absent or malformed.
 */
function mapValue(base: usize, p: i32, end: i32, entryField: u32, key: string): bool {
  while (p < end) {
    p = next(base, p, end);
    if (p < 0) return false;
    if (field.number != entryField || field.wire != 2) continue;
    let q = field.start;
    const entryEnd = field.start + field.length;
    let keyMatches = false;
    let valueStart = -1;
    let valueLength = 0;
    while (q < entryEnd) {
      q = next(base, q, entryEnd);
      if (q < 0) return false;
      if (field.wire != 2) continue;
      if (field.number == 1) keyMatches = equals(base, field.start, field.length, key);
      else if (field.number == 2) {
        valueStart = field.start;
        valueLength = field.length;
      }
    }
    if (keyMatches && valueStart >= 0) {
      field.start = valueStart;
      field.length = valueLength;
      return true;
    }
  }
  return false;
}

/** filter_metadata[ns].fields[key] as a string, or null. */
export function metadataString(md: ArrayBuffer, ns: string, key: string): string | null {
  const base = changetype<usize>(md);
  if (!mapValue(base, 0, md.byteLength, 1, ns)) return null; // Metadata.filter_metadata -> Struct
  if (!mapValue(base, field.start, field.start + field.length, 1, key)) return null; // Struct.fields -> Value
  // Value.string_value is field 3.
  let p = field.start;
  const end = field.start + field.length;
  while (p < end) {
    p = next(base, p, end);
    if (p < 0) return null;
    if (field.number == 3 && field.wire == 2) return String.UTF8.decodeUnsafe(base + <usize>field.start, <usize>field.length);
  }
  return null;
}
