// Build (from a llama.cpp b4748 checkout, ggml-quants.c compiled without -march as llama.cpp does):
//   gcc -O2 -DNDEBUG -std=gnu11 -Iggml/include -Iggml/src -c ggml/src/ggml-quants.c -o q.o
//   gcc -O2 -std=gnu11 -Iggml/include -Iggml/src ggml_harness.c q.o -lm -o harness
// then: LLQT_GGML_HARNESS=$PWD/harness go test ./quant/ -run TestAgainstReferenceHarness -v
// Reference harness: reads {u32 type, u32 nrows, u32 ne0, u32 has_imatrix, f32 src[nrows*ne0], f32 imatrix[ne0]}
// from stdin, writes quantized bytes followed by dequantized f32 to stdout.
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "ggml.h"
#include "ggml-quants.h"

float ggml_table_f32_f16[1 << 16];
void ggml_abort(const char * file, int line, const char * fmt, ...) { fprintf(stderr, "abort %s:%d\n", file, line); abort(); }
static const size_t bs[] = {[GGML_TYPE_Q4_0]=32,[GGML_TYPE_Q4_1]=32,[GGML_TYPE_Q5_0]=32,[GGML_TYPE_Q5_1]=32,[GGML_TYPE_Q8_0]=32,[GGML_TYPE_Q8_1]=32,
 [GGML_TYPE_Q2_K]=256,[GGML_TYPE_Q3_K]=256,[GGML_TYPE_Q4_K]=256,[GGML_TYPE_Q5_K]=256,[GGML_TYPE_Q6_K]=256,[GGML_TYPE_Q8_K]=256,[GGML_TYPE_IQ4_NL]=32,[GGML_TYPE_IQ4_XS]=256};
static const size_t ts[] = {[GGML_TYPE_Q4_0]=18,[GGML_TYPE_Q4_1]=20,[GGML_TYPE_Q5_0]=22,[GGML_TYPE_Q5_1]=24,[GGML_TYPE_Q8_0]=34,[GGML_TYPE_Q8_1]=36,
 [GGML_TYPE_Q2_K]=84,[GGML_TYPE_Q3_K]=110,[GGML_TYPE_Q4_K]=144,[GGML_TYPE_Q5_K]=176,[GGML_TYPE_Q6_K]=210,[GGML_TYPE_Q8_K]=292,[GGML_TYPE_IQ4_NL]=18,[GGML_TYPE_IQ4_XS]=136};
size_t ggml_type_size(enum ggml_type t) { return ts[t]; }
size_t ggml_row_size(enum ggml_type t, int64_t ne) { return ts[t]*ne/bs[t]; }
const char * ggml_type_name(enum ggml_type t) { return "?"; }

static float h2f(uint16_t h) {
    uint32_t s = (h >> 15) & 1, e = (h >> 10) & 0x1f, m = h & 0x3ff; float v;
    if (e == 0) v = ldexpf((float)m, -24); else if (e == 31) v = m ? NAN : INFINITY; else v = ldexpf((float)(m | 0x400), (int)e - 25);
    return s ? -v : v;
}

int main(void) {
    for (int i = 0; i < 65536; i++) ggml_table_f32_f16[i] = h2f((uint16_t)i);
    uint32_t hdr[4];
    if (fread(hdr, 4, 4, stdin) != 4) return 1;
    int type = hdr[0]; int64_t nrows = hdr[1], ne0 = hdr[2];
    float * src = malloc(4*nrows*ne0); float * im = NULL;
    if (fread(src, 4, nrows*ne0, stdin) != (size_t)(nrows*ne0)) return 1;
    if (hdr[3]) { im = malloc(4*ne0); if (fread(im, 4, ne0, stdin) != (size_t)ne0) return 1; }
    size_t rs = ggml_row_size(type, ne0);
    void * dst = calloc(nrows, rs);
    float * out = malloc(4*nrows*ne0);
    int64_t n = nrows*ne0;
    switch (type) {
    case GGML_TYPE_Q4_0: quantize_q4_0(src, dst, nrows, ne0, im); dequantize_row_q4_0(dst, out, n); break;
    case GGML_TYPE_Q4_1: quantize_q4_1(src, dst, nrows, ne0, im); dequantize_row_q4_1(dst, out, n); break;
    case GGML_TYPE_Q5_0: quantize_q5_0(src, dst, nrows, ne0, im); dequantize_row_q5_0(dst, out, n); break;
    case GGML_TYPE_Q5_1: quantize_q5_1(src, dst, nrows, ne0, im); dequantize_row_q5_1(dst, out, n); break;
    case GGML_TYPE_Q8_0: quantize_q8_0(src, dst, nrows, ne0, im); dequantize_row_q8_0(dst, out, n); break;
    case GGML_TYPE_Q8_1: quantize_row_q8_1_ref(src, dst, n); memset(out, 0, 4*n); break;
    case GGML_TYPE_Q2_K: quantize_q2_K(src, dst, nrows, ne0, im); dequantize_row_q2_K(dst, out, n); break;
    case GGML_TYPE_Q3_K: quantize_q3_K(src, dst, nrows, ne0, im); dequantize_row_q3_K(dst, out, n); break;
    case GGML_TYPE_Q4_K: quantize_q4_K(src, dst, nrows, ne0, im); dequantize_row_q4_K(dst, out, n); break;
    case GGML_TYPE_Q5_K: quantize_q5_K(src, dst, nrows, ne0, im); dequantize_row_q5_K(dst, out, n); break;
    case GGML_TYPE_Q6_K: quantize_q6_K(src, dst, nrows, ne0, im); dequantize_row_q6_K(dst, out, n); break;
    case GGML_TYPE_Q8_K: quantize_row_q8_K_ref(src, dst, n); dequantize_row_q8_K(dst, out, n); break;
    case GGML_TYPE_IQ4_NL: quantize_iq4_nl(src, dst, nrows, ne0, im); dequantize_row_iq4_nl(dst, out, n); break;
    case GGML_TYPE_IQ4_XS: quantize_iq4_xs(src, dst, nrows, ne0, im); dequantize_row_iq4_xs(dst, out, n); break;
    default: return 2;
    }
    fwrite(dst, rs, nrows, stdout);
    fwrite(out, 4, n, stdout);
    return 0;
}
