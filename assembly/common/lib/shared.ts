// Shared-data value type, kept free of host imports so pure code and tests can use it.

/** A value in shared data with the CAS token it was read at; data is null when the key is absent. */
export class SharedValue {
  constructor(public data: ArrayBuffer | null, public cas: u32) {}
}
