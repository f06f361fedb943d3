;; A prototype for bench/bn-simd.ts: BatchNormReluGrad's two passes (src/backend/fused-kernels.ts)
;; in WebAssembly SIMD, four channels at a time, over tensors on tfjs-backend-wasm's own heap (the
;; module imports that memory). Built with wabt's wat2wasm --enable-simd; bench/bn-simd.ts embeds
;; the bytes. C must be a multiple of 4 (Inception's channels all are); a kernel would add a scalar
;; tail. g = dy where y > 0 as a lane mask (y > 0 is false for NaN, where the JS gives NaN).
(module
  (import "env" "memory" (memory 1))
  ;; Pass 1 of BatchNormReluGrad: sums[c] += g, sums[C + c] += g * x, g = dy where y > 0; f64 sums.
  ;; dy, x, y: byte offsets of [count, C] float32; sums: byte offset of 2*C float64 (zeroed by the caller).
  (func (export "bnGradSums") (param $dy i32) (param $x i32) (param $y i32) (param $sums i32) (param $count i32) (param $C i32)
    (local $p i32) (local $c i32) (local $row i32) (local $g v128) (local $xv v128) (local $s i32) (local $sx i32)
    (local.set $p (i32.const 0))
    (block $done (loop $pixels
      (br_if $done (i32.ge_u (local.get $p) (local.get $count)))
      (local.set $row (i32.shl (i32.mul (local.get $p) (local.get $C)) (i32.const 2)))
      (local.set $c (i32.const 0))
      (block $cdone (loop $chans
        (br_if $cdone (i32.ge_u (local.get $c) (local.get $C)))
        ;; g = dy & (y > 0)
        (local.set $g (v128.and
          (v128.load (i32.add (local.get $dy) (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))))
          (f32x4.gt (v128.load (i32.add (local.get $y) (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2))))) (v128.const f32x4 0 0 0 0))))
        (local.set $xv (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2))))))
        (local.set $s (i32.add (local.get $sums) (i32.shl (local.get $c) (i32.const 3))))
        (local.set $sx (i32.add (local.get $s) (i32.shl (local.get $C) (i32.const 3))))
        (v128.store (local.get $s) (f64x2.add (v128.load (local.get $s)) (f64x2.promote_low_f32x4 (local.get $g))))
        (v128.store offset=16 (local.get $s) (f64x2.add (v128.load offset=16 (local.get $s)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g) (local.get $g)))))
        (local.set $g (f32x4.mul (local.get $g) (local.get $xv)))
        (v128.store (local.get $sx) (f64x2.add (v128.load (local.get $sx)) (f64x2.promote_low_f32x4 (local.get $g))))
        (v128.store offset=16 (local.get $sx) (f64x2.add (v128.load offset=16 (local.get $sx)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g) (local.get $g)))))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $chans)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $pixels)))
  )
  ;; Pass 2: dx = g * a[c] + x * b[c] + k[c]; coef: byte offset of 3*C float32 (a, b, k).
  (func (export "bnGradDx") (param $dy i32) (param $x i32) (param $y i32) (param $dx i32) (param $coef i32) (param $count i32) (param $C i32)
    (local $p i32) (local $c i32) (local $o i32) (local $co i32) (local $g v128)
    (local.set $p (i32.const 0))
    (block $done (loop $pixels
      (br_if $done (i32.ge_u (local.get $p) (local.get $count)))
      (local.set $c (i32.const 0))
      (block $cdone (loop $chans
        (br_if $cdone (i32.ge_u (local.get $c) (local.get $C)))
        (local.set $o (i32.shl (i32.add (i32.mul (local.get $p) (local.get $C)) (local.get $c)) (i32.const 2)))
        (local.set $co (i32.add (local.get $coef) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $g (v128.and (v128.load (i32.add (local.get $dy) (local.get $o)))
          (f32x4.gt (v128.load (i32.add (local.get $y) (local.get $o))) (v128.const f32x4 0 0 0 0))))
        (v128.store (i32.add (local.get $dx) (local.get $o))
          (f32x4.add
            (f32x4.add (f32x4.mul (local.get $g) (v128.load (local.get $co)))
                       (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $o))) (v128.load (i32.add (local.get $co) (i32.shl (local.get $C) (i32.const 2))))))
            (v128.load (i32.add (local.get $co) (i32.shl (local.get $C) (i32.const 3))))))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $chans)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $pixels)))
  )
)
