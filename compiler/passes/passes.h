// The compiler's passes, in the order they run (compiler/pipeline.cpp runs them, verifying
// after each). Each is one file in this folder with one public function; the comment on each
// says what it expects and what it guarantees. docs/passes.md has before/after examples.
#pragma once

#include "compiler/kernels.h"
#include "ir/program.h"
#include "simulator/arch.h"

namespace tpusim {

struct LoweringOptions {
  Im2colMode im2col = Im2colMode::Buffer;
  // "auto" picks the faster unit per depthwise convolution; "mxu" / "vpu" force one.
  std::string depthwise = "auto";
  // Keep tensors between convolutions in the unified buffer when they fit (allocate pass).
  bool on_chip = true;
  AttentionLowering attention = AttentionLowering::Flash;
};

// unroll_to_kernels: expects a shape-inferred graph; unrolls every op into a kernel
// (convolution and linear -> GEMM with C/groups*KH*KW x OC per group; pools, adds,
// activations and data movement -> vector kernels; attention -> an attention kernel of two
// GEMMs per score tile with the softmax between them, lowered as `options.attention` says), folding a relu/clip that is the only
// user of a GEMM or add into its epilogue. Fails (located at the op) for ops the compiler
// does not lower yet.
KernelModule unroll_to_kernels(const Graph& graph, const LoweringOptions& options);

// choose_depthwise_strategy: for each depthwise convolution (groups = channels), estimates
// cycles on the MXU (one channel at a time: a KH*KW x 1 tile) and on the VPU (a broadcast
// multiply-add per tap) and keeps the faster; the kernel records which and why.
void choose_depthwise_strategy(KernelModule& module, const ArchConfig& arch, const LoweringOptions& options);

// allocate_buffers: lifetime-based placement of tensors between kernels. A convolution's output
// whose only reader is the next kernel, a convolution reading it with im2col in the buffer,
// stays in the unified buffer (in that consumer's padded HWC layout) when it and the tensors
// live beside it fit in half the buffer; every other tensor goes through DRAM, and the plan
// says which and why. Regions are placed from the top of the buffer down, reusing the space of
// tensors whose reader has finished; each kernel's own slots get the space below.
// With `on_chip` false every tensor goes through DRAM (to measure what residency saves).
void allocate_buffers(KernelModule& module, const ArchConfig& arch, bool on_chip = true);

// tile_kernels: fits every GEMM to the array (K box <= rows, N tile <= cols) and the buffers
// (two A slots and two output slots in ub, two accumulator slots in acc, two weight slots or
// every k-tile of an n-tile in wb), choosing the largest M tile that fits (vector kernels
// are cut into chunks by the emitter). For attention it picks the score tile (queries x
// keys, keys <= the array's rows and columns), classifies every tile as empty, partial or full
// under the causal/window mask, and (materialized) decides whether the scores fit on chip.
// Fails with an actionable message when even the smallest tile does not fit, and, before the
// emitter builds anything, when the tiles need more than `max_program_instructions`
// instructions (counted from a floor every lowering of the tiles must reach).
void tile_kernels(KernelModule& module, const ArchConfig& arch, int64_t max_program_instructions = 2'000'000);

// emit_program: places every tile in its buffer slots and orders the work into DMA, MXU and
// VPU instructions with tokens (ring buffers of two slots, so loads of the next tile overlap
// compute of this one). Every instruction is labelled with its graph op. Graph inputs and
// weights become program inputs, graph outputs program outputs, the rest DRAM scratch.
// `tensor_of_value` (optional) receives the program tensor of each graph value (-1 if unused).
// Refuses (an error at the op being emitted) a program of more than `max_program_instructions`.
Program emit_program(const KernelModule& module, const ArchConfig& arch, std::vector<int>* tensor_of_value = nullptr,
                     int64_t max_program_instructions = 2'000'000);

}  // namespace tpusim
