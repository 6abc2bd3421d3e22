// cluster-key-slot (ioredis's own slot function) ships no types.
declare module "cluster-key-slot" {
  /** The Redis Cluster hash slot (0…16383) of a key, hash tags included. */
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    /** The slot every key shares, or -1 when they do not share one. */
    function generateMulti(keys: (string | Buffer)[]): number;
  }
  export = calculateSlot;
}
