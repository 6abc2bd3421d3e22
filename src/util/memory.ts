import { getHeapStatistics } from "node:v8";

/**
 * Whether V8's heap is close to its limit. The service runs with a capped old generation
 * (`--max-old-space-size`, test/support/process.ts SERVICE_NODE_FLAGS) so its memory stays
 * bounded; a flood of large bodies must then be refused, not read into a heap that has no room
 * left (V8 aborts the process at its limit). Read at most every 100 ms: the statistics cost a
 * native call, and a heap does not fill faster than that between two reads.
 */
export function createMemoryPressure(opts: { threshold?: number; read?: () => { used_heap_size: number; heap_size_limit: number } } = {}) {
  const threshold = opts.threshold ?? 0.85;
  const read = opts.read ?? getHeapStatistics;
  let checkedAt = Number.NEGATIVE_INFINITY;
  let pressed = false;
  return (now = performance.now()): boolean => {
    if (now - checkedAt >= 100) {
      const h = read();
      pressed = h.used_heap_size > threshold * h.heap_size_limit;
      checkedAt = now;
    }
    return pressed;
  };
}

/** The process's own gauge (readBody refuses a body while it says true). */
export const underMemoryPressure = createMemoryPressure();
