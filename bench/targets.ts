// The bench's targets that a machine's own baseline moves: verdicts computed against the same run.

/**
 * Envoy's RSS with two workers when the RSS target was set (2026-12-05, the first bench table in
 * bench/README.md): all four 96.1 MiB ("about 96"), the no-op module 82.0 and no filter 64.4 in that run.
 */
export const REFERENCE_RSS2_MIB = { allFour: 96.1, noop: 82.0, noFilter: 64.4 };

/**
 * The RSS target's verdict for one run. Envoy's own RSS and its wasm runtime's (V8 with a module that
 * does nothing) differ from machine to machine, by several MiB, whatever the module holds; so what all
 * four add over this run's no-op module is held to what they added when the target was set, and the
 * absolute figure and the figure over no filter are given beside it.
 */
export function rssVerdict(allFourMiB: number, noopMiB: number, noFilterMiB: number): string {
  const added = allFourMiB - noopMiB;
  const ref = REFERENCE_RSS2_MIB;
  const then = ref.allFour - ref.noop;
  const said = added <= then ? "met" : `missed by ${(added - then).toFixed(1)} MiB`;
  return (
    `RSS with 2 workers, all four: ${allFourMiB.toFixed(1)} MiB (no filter ${noFilterMiB.toFixed(1)}, the no-op module ${noopMiB.toFixed(1)}); ` +
    `+${added.toFixed(1)} over the no-op module (target: not above +${then.toFixed(1)}, what they added when it was set, ${ref.allFour} vs ${ref.noop} MiB: ${said})`
  );
}
