// Package kernels implements dot products and matrix multiply over ggml block
// formats for the CPU inference engine, with AVX2/FMA/F16C assembly on amd64
// chosen at run time and a pure-Go reference elsewhere (and under the purego
// build tag).
//
// # Activations
//
// MatMul converts its activations once per call into the format ggml-cpu
// pairs with the weight type (vec_dot_type in type_traits_cpu, b4748):
//   - Q8_0 for Q4_0, Q5_0, Q8_0 and IQ4_NL; Q8_1 for Q4_1 and Q5_1. These follow
//     ggml's AVX2 quantize_row_q8_0/q8_1 (d = amax/127, quants round(x·127/amax)
//     with ties to even, s = d·Σq), which is what llama.cpp runs on the x86
//     machines we compare against.
//   - Q8_K for Q2_K…Q6_K, IQ4_XS, IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S,
//     IQ1_M, TQ1_0 and TQ2_0, following quantize_row_q8_K_ref
//     (scale −127/max of the first element of largest magnitude, nearest_int).
//   - For F16 and BF16 weights ggml rounds the activations to f16 (bf16) and
//     forms f16·f16 (bf16·bf16) products in float32. We round the same way but
//     keep the rounded values as float32: the products are identical and one
//     conversion per element is saved. F32 weights use the activations as they
//     are.
//
// The assembly and Go quantizers produce identical bytes.
//
// # Accuracy
//
// Integer parts of every block dot are exact. Float accumulation order differs
// between the assembly and the Go reference (and from ggml), so results agree
// to float32 rounding, not bit for bit (except for IQ3_XXS and IQ3_S, whose
// assembly follows the Go reference's unfused order exactly; see
// _asm/iq3.go). Within one build MatMul is
// deterministic: each output is computed by one kernel call whatever the
// thread count, and the wide kernels used for prompt batches give the same
// bits as the single-row ones, so a sequence's logits do not depend on how
// it was batched.
//
// The ternary (TQ1_0, TQ2_0) and 1-bit (IQ1_S, IQ1_M) dots add each block's
// exact integer sum into the total with the Go reference's float operations
// (multiply, then add; IQ1's sum counts eighths of the δ = 1/8 shift), so
// their assembly gives the reference's bits in every shape.
//
// The Q8_0-family dots (Q8_0, Q4_0, Q5_0, IQ4_NL) share one contract in
// every shape: dot = fma(float32(isum_b), dx_b·dy_b, dot) over the blocks in
// order, the int32 block sum isum_b exact and the scale product exact in
// float32 (ggml's order, with the multiply-add fused). Since only the
// block sums' values matter, a kernel may form them in any layout:
//   - the single-row dot forms four blocks' sums together and then chains
//     them in scalar multiply-adds;
//   - the one-weight-row, four-activation-row kernel and the 4×4 tile
//     reduce four products' int32 lanes together (unpacks and adds), so that
//     four outputs share one convert and one multiply-add;
//   - with AVX512-VNNI, the Q8_0 panel kernel multiplies two weight rows
//     with sixteen activation rows that MatMul first repacks (see packPanel)
//     so that each vpdpbusd takes four quants of a weight row, broadcast,
//     against the same four quants of eight activation rows: the eight int32
//     lanes are eight outputs' sums and need no reduction. The repacked
//     activations carry +128 (vpdpbusd multiplies unsigned by signed bytes)
//     and 128·Σx is subtracted per weight row and block. Prompt processing
//     of Q8_0 weights spends most of its time there;
//   - where the CPU has AVX-512 F and BW as well, the wide panels take two
//     weight rows with four (or two) panels in zmm registers: vpdpbusd on
//     zmm issues as often as on ymm, and each unpacked weight dword then
//     feeds four vpdpbusd instead of two (Q8_0, Q4_0, IQ4_NL, and against
//     Q8_K panels Q4_K, Q5_K, Q6_K and IQ4_XS). The panel kernels prefetch
//     the next pair of weight rows as they go: a task meets each pair once,
//     from DRAM, too briefly for the hardware prefetchers;
//   - Q4_0's many-rows (decode) kernel on such CPUs holds one row's four
//     blocks in a zmm, one per 128-bit lane, and transposes four rows'
//     sums so that each lane holds one block's exact sums for the four
//     rows; the blocks are then added in order, lane by lane. The AVX2
//     set's does the same with two blocks in a ymm;
//   - with AMX (the amx set: Intel Sapphire Rapids and later, where Linux
//     grants the tile state), sixteen weight rows of Q8_0, Q4_0 or IQ4_NL
//     meet the same panels in tiles: a TDPBSSD forms one block's exact sums
//     for sixteen weight rows and sixteen activation rows (the panel block
//     is already the B tile's layout, signed), which are stored and then
//     scaled and added as above, block by block. The weight rows' scales,
//     and the 4-bit types' quants as signed bytes, are unpacked once per
//     task, whose column tile is wider for it (amxColTile). The K-quants
//     (Q4_K, Q5_K, Q6_K, IQ4_XS) take their Q8_K panels the same way: each
//     weight quant (less its offset, for Q6_K and IQ4_XS) times its run's
//     scale, a signed 14-bit a = 128·h + l, is split into two signed
//     bytes, so that two TDPBSSD over 64 quants give 128·Σh·y + Σl·y, the
//     block's exact scaled sum with no step between runs; Q4_K's and
//     Q5_K's mins part is two more, against the activations' group sums
//     split the same way (packAMXSums). Each block then takes the K-quant
//     panels' float step;
//   - without VNNI, the AVX2 set's panels for weights whose quants are
//     signed bytes (Q8_0, IQ4_NL, and IQ4_XS against Q8_K) are word panels:
//     activations and weights are widened to int16 beforehand (the weights
//     once per task, IQ4_XS's already times their sub-block scale), so
//     that one vpmaddwd forms sixteen products with no sign fix-ups.
//
// # Work split
//
// MatMul splits rows into tasks of 16 (and activation rows into tiles of 64
// for prompt batches, 256 with word panels, whose tasks widen their rows
// first) and hands them to a persistent team of worker
// goroutines (see pool.go): workers and caller claim tasks from one atomic
// word, idle workers poll briefly before parking, and a call allocates
// nothing. For one to three activation rows (token generation) the weights
// stream from DRAM once, so each matrix is instead cut into a multiple of
// threads equal chunks of at most 1 MiB: long sequential runs per thread
// are what the hardware prefetchers need, and the many-rows kernels compute
// a chunk in one assembly call. MatMulMany multiplies several matrices with
// the same input in one parallel loop after converting the input once
// (query/key/value, gate/up). Parallel exposes the team to the engine's
// other loops (attention).
//
// # Assembly
//
// The amd64 kernels are generated with avo from the module in _asm (run
// go generate); the generated kernels_amd64.s and kernels_amd64.go are
// committed. They need AVX2, FMA and F16C (golang.org/x/sys/cpu) and use only
// the 16 AVX2 vector registers; the VNNI kernels (ymm vpdpbusd) also need
// AVX512-VNNI and AVX512-VL and replace their AVX2 counterparts where the CPU
// has them, and the zmm kernels (wide panels, Q4_0's many rows) need
// AVX512-F and -BW besides. The AMX kernels (amx…, _asm/amx.go) need
// AMX-TILE and AMX-INT8 too; Go's assembler has no AMX mnemonics, so the
// generator emits their tile instructions as bytes.
package kernels

//go:generate sh -c "cd _asm && go run . -out ../kernels_amd64.s -stubs ../kernels_amd64.go -pkg kernels"
