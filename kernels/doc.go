// Package kernels implements dot products and matrix multiply over ggml block
// formats for the CPU inference engine, with AVX2/FMA assembly on amd64 chosen
// at run time and a pure-Go reference elsewhere (and under the purego tag).
//
// MatMul quantizes its activations once per call into the format ggml-cpu
// pairs with the weight type (type_traits_cpu vec_dot_type in b4748):
// Q8_0 for Q4_0, Q5_0, Q8_0 and IQ4_NL; Q8_1 for Q4_1 and Q5_1; Q8_K for
// Q2_K…Q6_K and IQ4_XS. Q8_0 and Q8_1 activations follow ggml's AVX2 path
// (scale 127/amax, round half to even), which is what llama.cpp runs on the
// x86 machines we compare against; Q8_K follows quantize_row_q8_K_ref.
// As in ggml, F16 weights multiply activations rounded to F16 and BF16 weights
// activations rounded to BF16 (round to nearest even), with float32
// accumulation; F32 weights multiply the float32 activations directly.
//
// Integer parts of every block dot are exact; only the order of the float32
// accumulation differs between the assembly and the Go reference.
package kernels

//go:generate sh -c "cd _asm && go run . -out ../kernels_amd64.s -stubs ../kernels_amd64.go -pkg kernels"
