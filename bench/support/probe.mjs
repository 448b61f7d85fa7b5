// Preloaded (--import) into the warm function process by the bench only: on an IPC message
// it answers with the V8 heap bytes allocated since the previous one (heap growth plus
// what every GC in between freed, from v8.GCProfiler).
import v8 from 'node:v8';

let profiler = new v8.GCProfiler();
let usedAtStart = v8.getHeapStatistics().used_heap_size;
profiler.start();
process.on('message', () => {
  const data = profiler.stop();
  const used = v8.getHeapStatistics().used_heap_size;
  let freed = 0;
  for (const gc of data?.statistics ?? []) freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
  process.send?.({ allocated: used - usedAtStart + freed });
  profiler = new v8.GCProfiler();
  usedAtStart = v8.getHeapStatistics().used_heap_size;
  profiler.start();
});
// The IPC channel must not keep the process alive on its own.
process.channel?.unref();
