// The additions of the allreduce, in WebAssembly SIMD (f32x4): a plain JavaScript loop over two
// Float32Arrays adds about 0.5 G values/s here, which made the sums cost more than the tags;
// f32x4.add runs at memory speed. Wasm reads only its own memory, so the values pass through it
// in chunks small enough to stay in the core's cache. Measured for 12 M values: 6-8 ms in 64 KiB
// chunks, 8-12 ms in 4 MiB chunks, 10-15 ms for a 4-way unrolled JavaScript loop, 24-50 ms for
// the plain loops this replaces.
//
// f32x4.add and f32x4.div round as scalar float32 arithmetic does, so the results are those of
// Math.fround(a + b) and Math.fround(s / n) (a NaN's payload bits may differ; every rank takes
// the finishing rank's bytes, so replicas stay identical even then).

/** Values per chunk; a multiple of 4. */
const CHUNK = 16_384;
const CHUNK_BYTES = CHUNK * 4;

// The module, by hand (there is no assembler among the dependencies). In the text format:
//   (memory (export "memory") 3)
//   (func (export "add") (param $a i32) (param $b i32) (param $end i32)
//     loop: while $a < $end: v128.store($b, f32x4.add(v128.load($b), v128.load($a))); $a += 16; $b += 16)
//   (func (export "addDivide") (param $a i32) (param $b i32) (param $end i32) (param $d f32)
//     the same with f32x4.div(f32x4.add(...), f32x4.splat($d)))
// Both work 16 bytes at a time: a tail of fewer than 4 values is computed from whatever follows
// it in memory and never read back.
const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const op = {
  localGet: (i: number) => [0x20, i],
  localSet: (i: number) => [0x21, i],
  i32Const16: [0x41, 16],
  i32Add: [0x6a],
  i32GeU: [0x4f],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  brIf: (depth: number) => [0x0d, depth],
  br: (depth: number) => [0x0c, depth],
  end: [0x0b],
  v128Load: [0xfd, 0x00, 0x04, 0x00], // align 2^4, offset 0
  v128Store: [0xfd, 0x0b, 0x04, 0x00],
  f32x4Splat: [0xfd, 0x13],
  f32x4Add: [0xfd, 0xe4, 0x01],
  f32x4Div: [0xfd, 0xe7, 0x01],
};

function functionBody(divide: boolean): number[] {
  // Parameters 0 $a, 1 $b, 2 $end (3 $d); local 3 (4) holds splat($d).
  const splat = 4;
  const locals = divide ? [1, 1, V128] : [0];
  const code = [
    ...(divide ? [...op.localGet(3), ...op.f32x4Splat, ...op.localSet(splat)] : []),
    ...op.block, ...op.loop,
    ...op.localGet(0), ...op.localGet(2), ...op.i32GeU, ...op.brIf(1),
    ...op.localGet(1), ...op.localGet(1), ...op.v128Load, ...op.localGet(0), ...op.v128Load, ...op.f32x4Add,
    ...(divide ? [...op.localGet(splat), ...op.f32x4Div] : []),
    ...op.v128Store,
    ...op.localGet(0), ...op.i32Const16, ...op.i32Add, ...op.localSet(0),
    ...op.localGet(1), ...op.i32Const16, ...op.i32Add, ...op.localSet(1),
    ...op.br(0), ...op.end, ...op.end, ...op.end,
  ];
  const body = [...locals, ...code];
  return [...leb128(body.length), ...body];
}

function section(id: number, contents: number[]): number[] {
  return [id, ...leb128(contents.length), ...contents];
}

function leb128(value: number): number[] {
  const bytes: number[] = [];
  do {
    const byte = value & 0x7f;
    value >>>= 7;
    bytes.push(value ? byte | 0x80 : byte);
  } while (value);
  return bytes;
}

function name(text: string): number[] {
  return [text.length, ...Buffer.from(text, 'ascii')];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [2, 0x60, 3, I32, I32, I32, 0, 0x60, 4, I32, I32, I32, F32, 0]), // types
    ...section(3, [2, 0, 1]), // functions: add is type 0, addDivide type 1
    ...section(5, [1, 0x00, 3]), // one memory of 3 pages: two chunks and room
    ...section(7, [3, ...name('memory'), 0x02, 0, ...name('add'), 0x00, 0, ...name('addDivide'), 0x00, 1]),
    ...section(10, [2, ...functionBody(false), ...functionBody(true)]), // code
  ]);
}

interface Kernels {
  memory: WebAssembly.Memory;
  add(a: number, b: number, end: number): void;
  addDivide(a: number, b: number, end: number, divisor: number): void;
}

let kernels: { exports: Kernels; values: Float32Array } | undefined;

/** Compiled on first use (well under a millisecond); the memory never grows, so `values` stays valid. */
function getKernels(): { exports: Kernels; values: Float32Array } {
  if (!kernels) {
    const exports = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes())).exports as unknown as Kernels;
    kernels = { exports, values: new Float32Array(exports.memory.buffer) };
  }
  return kernels;
}

/** into[i] <- into[i] + from[i]. */
export function addInto(into: Float32Array, from: Float32Array): void {
  const { exports } = getKernels();
  forEachChunk(into, from, (length) => exports.add(0, CHUNK_BYTES, length * 4));
}

/** into[i] <- (into[i] + from[i]) / divisor, and also[i] <- the same value. */
export function addDivideInto(into: Float32Array, from: Float32Array, divisor: number, also: Float32Array): void {
  const { exports } = getKernels();
  forEachChunk(into, from, (length) => exports.addDivide(0, CHUNK_BYTES, length * 4, divisor), also);
}

/** Copies each chunk of `from` to wasm offset 0 and of `into` to CHUNK_BYTES, runs `kernel`, copies the result back. */
function forEachChunk(into: Float32Array, from: Float32Array, kernel: (length: number) => void, also?: Float32Array): void {
  if (into.length !== from.length || (also && also.length !== into.length)) {
    throw new Error(`lengths differ: ${into.length}, ${from.length}${also ? `, ${also.length}` : ''}`);
  }
  const { values } = getKernels();
  const result = values.subarray(CHUNK, 2 * CHUNK);
  for (let start = 0; start < into.length; start += CHUNK) {
    const end = Math.min(start + CHUNK, into.length);
    values.set(from.subarray(start, end), 0);
    values.set(into.subarray(start, end), CHUNK);
    kernel(end - start);
    const chunk = end - start === CHUNK ? result : result.subarray(0, end - start);
    into.set(chunk, start);
    also?.set(chunk, start);
  }
}
