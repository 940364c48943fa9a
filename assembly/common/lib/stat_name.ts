// Stat names built from user-chosen rule names. Pure.

/** Stat name segment: keeps [A-Za-z0-9_-], maps the rest to '_', so a name cannot add stat levels. */
export function statName(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f;
    if (ok) out += String.fromCharCode(c);
    else out += "_";
  }
  return out;
}
