/*
ggml_harness.c: the ternary and 1-bit dots and encoders of llama.cpp b4748,
for TestGGMLHarness (formats/block/ggml_harness_test.go). Build it from
b4748's sources, without AVX and without FMA, as ggml-base is built:

  git -C <llama.cpp> archive b4748 ggml/src ggml/include | tar x
  gcc -O2 -c -Iggml/include -Iggml/src -Iggml/src/ggml-cpu ggml/src/ggml-cpu/ggml-cpu-quants.c -o cq.o
  gcc -O2 -c -Iggml/include -Iggml/src ggml/src/ggml-quants.c -o q.o
  gcc -O2 ggml_harness.c cq.o q.o -Iggml/include -Iggml/src -lm -o ggml_harness

then run LLQT_GGML_HARNESS=./ggml_harness go test ./formats/block -run TestGGMLHarness.
It reads records from argv[1] and writes results to argv[2]:
  'D' type u8, nb u32, weight blocks, Q8_K blocks  ->  the dot (float32)
  'E' type u8, nrows u32, ne0 u32, float32 x[nrows*ne0], has_w u8,
      [float32 w[ne0]]                              ->  the encoded rows
  'Q' type u8, nb u32, weight blocks                ->  the decoded floats
with type 0 TQ1_0, 1 TQ2_0, 2 IQ1_S, 3 IQ1_M. Rows are encoded one call
each (quantize_iq1_* read stale shifts for zero sub-blocks; the inputs
have none).
*/
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include "ggml.h"
#include "ggml-quants.h"
float ggml_table_f32_f16[1 << 16];
void ggml_abort(const char * file, int line, const char * fmt, ...) { fprintf(stderr, "abort %s:%d\n", file, line); exit(3); }
static size_t tsize(enum ggml_type t) { switch (t) { case GGML_TYPE_TQ1_0: return 54; case GGML_TYPE_TQ2_0: return 66; case GGML_TYPE_IQ1_S: return 50; case GGML_TYPE_IQ1_M: return 56; default: return 0; } }
size_t ggml_type_size(enum ggml_type t) { return tsize(t); }
size_t ggml_row_size(enum ggml_type t, int64_t ne) { return tsize(t) * ne / 256; }
const char * ggml_type_name(enum ggml_type t) { return "?"; }
static float h2f(uint16_t h) {
  uint32_t s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023, f;
  if (e == 0) { if (m == 0) f = s << 31; else { int k = -1; do { k++; m <<= 1; } while (!(m & 1024)); m &= 1023; f = (s << 31) | ((uint32_t)(127 - 15 - k) << 23) | (m << 13); } }
  else if (e == 31) f = (s << 31) | 0x7f800000 | (m << 13);
  else f = (s << 31) | ((e + 112) << 23) | (m << 13);
  float r; memcpy(&r, &f, 4); return r;
}
void ggml_vec_dot_tq1_0_q8_K(int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy, size_t by, int nrc);
void ggml_vec_dot_tq2_0_q8_K(int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy, size_t by, int nrc);
void ggml_vec_dot_iq1_s_q8_K(int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy, size_t by, int nrc);
void ggml_vec_dot_iq1_m_q8_K(int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy, size_t by, int nrc);
static enum ggml_type types[4] = {GGML_TYPE_TQ1_0, GGML_TYPE_TQ2_0, GGML_TYPE_IQ1_S, GGML_TYPE_IQ1_M};
int main(int argc, char ** argv) {
  for (int i = 0; i < 65536; i++) ggml_table_f32_f16[i] = h2f(i);
  iq2xs_init_impl(GGML_TYPE_IQ1_S); iq2xs_init_impl(GGML_TYPE_IQ1_M);
  FILE * in = fopen(argv[1], "rb"); FILE * out = fopen(argv[2], "wb");
  uint8_t kind;
  while (fread(&kind, 1, 1, in) == 1) {
    if (kind == 'D') {
      uint8_t ti; uint32_t nb; fread(&ti, 1, 1, in); fread(&nb, 4, 1, in);
      size_t ws = nb * tsize(types[ti]), as = nb * 292;
      uint8_t * w = malloc(ws), * a = malloc(as); fread(w, 1, ws, in); fread(a, 1, as, in);
      float s = 0;
      switch (ti) { case 0: ggml_vec_dot_tq1_0_q8_K(nb*256, &s, 0, w, 0, a, 0, 1); break; case 1: ggml_vec_dot_tq2_0_q8_K(nb*256, &s, 0, w, 0, a, 0, 1); break;
        case 2: ggml_vec_dot_iq1_s_q8_K(nb*256, &s, 0, w, 0, a, 0, 1); break; case 3: ggml_vec_dot_iq1_m_q8_K(nb*256, &s, 0, w, 0, a, 0, 1); break; }
      fwrite(&s, 4, 1, out); free(w); free(a);
    } else if (kind == 'Q') {
      uint8_t ti; uint32_t nb; fread(&ti, 1, 1, in); fread(&nb, 4, 1, in);
      size_t ws = nb * tsize(types[ti]);
      uint8_t * w = malloc(ws); fread(w, 1, ws, in);
      float * y = malloc(4 * 256 * nb);
      switch (ti) { case 0: dequantize_row_tq1_0((const void *)w, y, nb*256); break; case 1: dequantize_row_tq2_0((const void *)w, y, nb*256); break;
        case 2: dequantize_row_iq1_s((const void *)w, y, nb*256); break; case 3: dequantize_row_iq1_m((const void *)w, y, nb*256); break; }
      fwrite(y, 4, 256 * nb, out); free(w); free(y);
    } else {
      uint8_t ti, hasw; uint32_t nrows, ne0; fread(&ti, 1, 1, in); fread(&nrows, 4, 1, in); fread(&ne0, 4, 1, in);
      float * x = malloc(4 * nrows * ne0); fread(x, 4, nrows * ne0, in); fread(&hasw, 1, 1, in);
      float * w = NULL; if (hasw) { w = malloc(4 * ne0); fread(w, 4, ne0, in); }
      size_t rs = ggml_row_size(types[ti], ne0); uint8_t * y = calloc(nrows, rs);
      for (uint32_t r = 0; r < nrows; r++) {  /* one call per row: each row starts from fresh (zeroed below) stack */
        switch (ti) { case 0: quantize_tq1_0(x + r*ne0, y + r*rs, 1, ne0, w); break; case 1: quantize_tq2_0(x + r*ne0, y + r*rs, 1, ne0, w); break;
          case 2: quantize_iq1_s(x + r*ne0, y + r*rs, 1, ne0, w); break; case 3: quantize_iq1_m(x + r*ne0, y + r*rs, 1, ne0, w); break; }
      }
      fwrite(y, 1, nrows * rs, out); free(x); free(w); free(y);
    }
  }
  fclose(out); return 0;
}
