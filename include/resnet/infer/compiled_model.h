#pragma once
// An inference graph compiled for this CPU: the passes run once, at construction, and
// run() only executes.
//
// Passes: BatchNorm folded into the preceding convolution's weights and bias; the
// residual add and the ReLU fused into the convolution as oneDNN post-ops; activations
// kept in oneDNN's blocked layout from one convolution to the next; weights packed once
// per input shape. See src/infer/ for each pass.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "resnet/infer/graph.h"
#include "resnet/tensor/tensor.h"

namespace resnet::infer {

enum class Precision { f32, bf16, int8 };

// Activation layout between convolutions. auto: nChw16c for f32 (where oneDNN's
// Winograd and jit direct kernels run), oneDNN's own choice (NHWC, brgconv) for bf16 and
// int8; see the README's measurements.
enum class LayoutChoice { automatic, blocked, native };

struct Calibration;

struct CompileOptions {
  Precision precision = Precision::f32;
  LayoutChoice layout = LayoutChoice::automatic;
  // Required for int8: the activation ranges (see calibration.h).
  std::shared_ptr<const Calibration> calibration;
  // Fuse residual adds and ReLUs into the convolutions (f32 and bf16 only may turn it
  // off): off, every value of the graph after BN folding is computed and observed, which
  // is what calibration records (a quantized ONNX export needs the ranges of the
  // convolutions' results before their adds).
  bool fuse = true;
};

class CompiledModel {
 public:
  explicit CompiledModel(Graph graph, CompileOptions options = {});
  ~CompiledModel();
  CompiledModel(CompiledModel&&) noexcept;
  CompiledModel& operator=(CompiledModel&&) noexcept;

  // x: plain NCHW f32. Returns the graph's output, plain f32. The first run of an input
  // shape compiles for it; the compiled steps and packed weights are kept for every shape
  // seen, so alternating shapes (eval's last, shorter batch) recompile nothing.
  Tensor run(const Tensor& x);
  // Every output of the graph: {output, extra_outputs...}, plain, each in its element
  // type's dtype (f32, i64 Indices, u8 0/1 for a bool mask).
  std::vector<Tensor> run_outputs(const Tensor& x);
  // The graph after the passes, one line per step (for --verbose and tests).
  std::string describe() const;
  // The most activation bytes alive at once in the last run (what the storage pool
  // must hold for it: a value's storage is released after its last reader, and a
  // residual's storage becomes the output of the convolution that adds it), against the
  // bytes all activations of one run would take without reuse.
  // weight_packs: how many times convolution weights were packed, over all runs so far.
  struct MemoryStats {
    size_t buffer_bytes = 0;
    size_t activation_bytes = 0;
    int64_t weight_packs = 0;
  };
  MemoryStats memory_stats() const;
  // Empty, or why the requested precision could not be used (bf16 on a CPU without it).
  const std::string& fallback_note() const;
  // Called with every value a run produces (plain f32), by value name: calibration
  // watches the activations through it. Slows runs down; not for production.
  void set_observer(std::function<void(const std::string&, const Tensor&)> observer);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet::infer
