// Fetched artifacts kept by content digest, so a warm deploy of a release it has read
// before fetches no manifest and no blob. A digest names its content forever, so an entry
// never goes stale: the only reason to drop one is room (least recently used first, by
// total size and by count). Two deploys asking for the same digest at once share one fetch.
import type { Artifact } from './artifact.ts';

export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CACHE_ENTRIES = 256;

export interface DigestCacheOptions<T> {
  /** The cost of one value in bytes (what the bound counts). */
  sizeOf: (value: T) => number;
  /** Default 64 MiB. A value bigger than this is returned but not kept. */
  maxBytes?: number;
  /** Default 256. */
  maxEntries?: number;
}

export class DigestCache<T> {
  private readonly sizeOf: (value: T) => number;
  private readonly maxBytes: number;
  private readonly maxEntries: number;
  /** Insertion order is recency order: the first key is the least recently used. */
  private readonly entries = new Map<string, { value: T; size: number }>();
  private readonly loading = new Map<string, Promise<T>>();
  private total = 0;

  constructor(opts: DigestCacheOptions<T>) {
    this.sizeOf = opts.sizeOf;
    this.maxBytes = opts.maxBytes ?? DEFAULT_CACHE_BYTES;
    this.maxEntries = opts.maxEntries ?? DEFAULT_CACHE_ENTRIES;
  }

  /** The value for `digest`: kept, being loaded by another caller, or loaded now. A failed load is not kept. */
  get(digest: string, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(digest);
    if (hit) {
      this.entries.delete(digest);
      this.entries.set(digest, hit);
      return Promise.resolve(hit.value);
    }
    const running = this.loading.get(digest);
    if (running) return running;
    const loaded = (async () => {
      try {
        const value = await load();
        this.keep(digest, value);
        return value;
      } finally {
        this.loading.delete(digest);
      }
    })();
    this.loading.set(digest, loaded);
    return loaded;
  }

  has(digest: string): boolean {
    return this.entries.has(digest);
  }

  /** Entries kept. */
  get size(): number {
    return this.entries.size;
  }

  /** Bytes kept, as `sizeOf` counts them. */
  get bytes(): number {
    return this.total;
  }

  private keep(digest: string, value: T): void {
    const size = this.sizeOf(value);
    if (size > this.maxBytes || this.maxEntries < 1) return;
    const old = this.entries.get(digest);
    if (old) {
      this.entries.delete(digest);
      this.total -= old.size;
    }
    this.entries.set(digest, { value, size });
    this.total += size;
    for (const [key, entry] of this.entries) {
      if (this.total <= this.maxBytes && this.entries.size <= this.maxEntries) break;
      this.entries.delete(key);
      this.total -= entry.size;
    }
  }
}

/** What an artifact costs to keep: its text (UTF-16 in memory, so two bytes a character) and paths. */
export function artifactSize(artifact: Artifact): number {
  return artifact.files.reduce((sum, f) => sum + 2 * (f.path.length + f.text.length), 0);
}

/** A cache of read artifacts by manifest digest. */
export function artifactCache(opts: Omit<DigestCacheOptions<Artifact>, 'sizeOf'> = {}): DigestCache<Artifact> {
  return new DigestCache<Artifact>({ ...opts, sizeOf: artifactSize });
}
