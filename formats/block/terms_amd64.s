//go:build !purego

#include "textflag.h"

// Element-wise terms of the K-quant scale search (terms.go), eight values
// per AVX2 instruction. Only separate multiplies and adds (no FMA), in
// the scalar code's order, so every lane rounds exactly as Go does. The
// first source of each operation is the one the Go compiler (without
// -race) makes first in the scalar code; that only decides which payload
// two NaNs meeting give, which the searches never see for finite input
// (quantizeRows refuses any other).

DATA qkxMagic<>+0(SB)/4, $0x4b400000 // 1.5·2^23: nearest_int's offset
GLOBL qkxMagic<>(SB), RODATA|NOPTR, $4
DATA qkxMantissa<>+0(SB)/4, $0x007fffff
GLOBL qkxMantissa<>(SB), RODATA|NOPTR, $4
DATA qkxHalf<>+0(SB)/4, $0x00400000
GLOBL qkxHalf<>(SB), RODATA|NOPTR, $4

// func qkx2TermsAVX2(x, w, codes, wl, wll, wxl *[32]float32, iscale, m float32, nmax int32)
TEXT ·qkx2TermsAVX2(SB), NOSPLIT, $0-60
	MOVQ         x+0(FP), SI
	MOVQ         w+8(FP), DI
	MOVQ         codes+16(FP), R8
	MOVQ         wl+24(FP), R9
	MOVQ         wll+32(FP), R10
	MOVQ         wxl+40(FP), R11
	VBROADCASTSS iscale+48(FP), Y0
	VBROADCASTSS m+52(FP), Y1
	MOVL         nmax+56(FP), AX
	VMOVD        AX, X2
	VPBROADCASTD X2, Y2
	VBROADCASTSS qkxMagic<>(SB), Y3
	VPBROADCASTD qkxMantissa<>(SB), Y4
	VPBROADCASTD qkxHalf<>(SB), Y5
	VPXOR        Y6, Y6, Y6
	XORQ         AX, AX

termsLoop:
	VMOVUPS   (SI)(AX*1), Y7
	VSUBPS    Y1, Y7, Y8       // x - m
	VMULPS    Y0, Y8, Y8       // iscale·(x - m)
	VADDPS    Y3, Y8, Y8       // nearest_int: + 1.5·2^23,
	VPAND     Y4, Y8, Y8       // the low mantissa bits
	VPSUBD    Y5, Y8, Y8       // - 2^22
	VPMAXSD   Y6, Y8, Y8       // clamp to [0, nmax]
	VPMINSD   Y2, Y8, Y8
	VCVTDQ2PS Y8, Y8           // f
	VMOVUPS   Y8, (R8)(AX*1)
	VMOVUPS   (DI)(AX*1), Y9
	VMULPS    Y8, Y9, Y9       // wl = w·f
	VMOVUPS   Y9, (R9)(AX*1)
	VMULPS    Y9, Y8, Y10      // wl·f
	VMOVUPS   Y10, (R10)(AX*1)
	VMULPS    Y9, Y7, Y11      // wl·x
	VMOVUPS   Y11, (R11)(AX*1)
	ADDQ      $32, AX
	CMPQ      AX, $128
	JLT       termsLoop
	VZEROUPPER
	RET

// func qkx2ErrAVX2(codes, x, w, out *[32]float32, scale, min float32)
TEXT ·qkx2ErrAVX2(SB), NOSPLIT, $0-40
	MOVQ         codes+0(FP), SI
	MOVQ         x+8(FP), DI
	MOVQ         w+16(FP), R8
	MOVQ         out+24(FP), R9
	VBROADCASTSS scale+32(FP), Y0
	VBROADCASTSS min+36(FP), Y1
	XORQ         AX, AX

errLoop:
	VMOVUPS (SI)(AX*1), Y2
	VMULPS  Y0, Y2, Y2         // scale·f
	VADDPS  Y1, Y2, Y2         // + min
	VMOVUPS (DI)(AX*1), Y3
	VSUBPS  Y3, Y2, Y2         // - x
	VMULPS  Y2, Y2, Y2         // d²
	VMOVUPS (R8)(AX*1), Y3
	VMULPS  Y3, Y2, Y2         // w·d²
	VMOVUPS Y2, (R9)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, $128
	JLT     errLoop
	VZEROUPPER
	RET

// func qxTermsAVX2(x, w, wxl, wll *[16]float32, iscale float32, nmax int32)
TEXT ·qxTermsAVX2(SB), NOSPLIT, $0-40
	MOVQ         x+0(FP), SI
	MOVQ         w+8(FP), DI
	MOVQ         wxl+16(FP), R8
	MOVQ         wll+24(FP), R9
	VBROADCASTSS iscale+32(FP), Y0
	MOVL         nmax+36(FP), AX
	LEAL         -1(AX), BX
	NEGL         AX
	VMOVD        AX, X1
	VPBROADCASTD X1, Y1            // -nmax
	VMOVD        BX, X2
	VPBROADCASTD X2, Y2            // nmax - 1
	VBROADCASTSS qkxMagic<>(SB), Y3
	VPBROADCASTD qkxMantissa<>(SB), Y4
	VPBROADCASTD qkxHalf<>(SB), Y5
	XORQ         AX, AX

qxLoop:
	VMOVUPS   (SI)(AX*1), Y6       // x
	VMULPS    Y0, Y6, Y7           // iscale·x
	VADDPS    Y3, Y7, Y7           // nearest_int
	VPAND     Y4, Y7, Y7
	VPSUBD    Y5, Y7, Y7
	VPMAXSD   Y1, Y7, Y7           // clamp to [-nmax, nmax-1]
	VPMINSD   Y2, Y7, Y7
	VCVTDQ2PS Y7, Y7               // f
	VMOVUPS   (DI)(AX*1), Y8       // w
	VMULPS    Y6, Y8, Y9           // w·x
	VMULPS    Y7, Y9, Y9           // w·x·f
	VMOVUPS   Y9, (R8)(AX*1)
	VMULPS    Y7, Y8, Y10          // w·f
	VMULPS    Y10, Y7, Y10         // w·f·f
	VMOVUPS   Y10, (R9)(AX*1)
	ADDQ      $32, AX
	CMPQ      AX, $64
	JLT       qxLoop
	VZEROUPPER
	RET

// func hasAVX2() bool
TEXT ·hasAVX2(SB), NOSPLIT, $0-1
	XORL  AX, AX
	XORL  CX, CX
	CPUID
	CMPL  AX, $7              // leaf 7 needed
	JLT   noAVX2
	MOVL  $1, AX
	XORL  CX, CX
	CPUID
	ANDL  $0x18000000, CX     // OSXSAVE and AVX
	CMPL  CX, $0x18000000
	JNE   noAVX2
	XORL  CX, CX
	XGETBV                    // XCR0: the OS saves XMM and YMM state
	ANDL  $6, AX
	CMPL  AX, $6
	JNE   noAVX2
	MOVL  $7, AX
	XORL  CX, CX
	CPUID
	ANDL  $0x20, BX           // AVX2
	JZ    noAVX2
	MOVB  $1, ret+0(FP)
	RET

noAVX2:
	MOVB $0, ret+0(FP)
	RET
