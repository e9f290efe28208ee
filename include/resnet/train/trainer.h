#pragma once
// The training loop behind `resnet train`: data, model, loss, SGD and schedule, with a
// test pass after every epoch, metrics.csv, checkpoints, plots, resume and Ctrl-C.
//
// Output directory:
//   config.json          the whole TrainConfig (a --resume run reads it back)
//   metrics.csv          epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds
//   last.safetensors     model state_dict + CheckpointInfo metadata (loads in PyTorch)
//   last.state.safetensors  SGD momentum buffers + where to resume (metadata)
//   best.safetensors     the model with the best test accuracy so far
//   curves.svg           loss and accuracy curves, train and test
//   steps.csv            step,epoch,train_loss,train_acc every 20 steps (log_every)
//   grad_norms.csv       with grad_norm_steps > 0: step,layer,depth,norm per conv weight
//   val_split.txt        with val_split > 0: the held-out files (or dataset indices), one a line
//   bad_images.txt       with skip_bad_images: every file that could not be read, and why
//
// Determinism: batches come from (seed, epoch) (data::DataLoader), the weights' initial
// values from the seed, and every other state is in the checkpoint, so an interrupted
// run resumed with --resume ends with the same weights as an uninterrupted one.

#include <atomic>
#include <string>

#include "resnet/models/zoo.h"

namespace resnet::dist {
class Communicator;
}

namespace resnet::train {

struct TrainConfig {
  // The preset (--recipe) this run started from, recorded for the reader; the values below
  // are what ran. Empty: none.
  std::string recipe;
  std::string model = "resnet20";
  models::ModelOptions model_options;  // in_channels/num_classes default to the data's
  std::string data = "fashion-mnist";
  int64_t epochs = 5;
  int64_t batch = 128;
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;
  bool decay_bn_and_bias = false;     // PyTorch applies decay to all; exempting BN/bias helps
  std::string schedule = "onecycle";  // lr_schedule_spec.h grammar
  int64_t warmup_steps = 0;
  double label_smoothing = 0.0;
  // Augmentation: random crop with this zero padding (0 = none), horizontal flips,
  // random erasing probability (0 = none).
  int64_t crop_padding = 2;
  bool flip = true;
  double erasing = 0.0;
  // Images of any size (data/pipeline.h): the crop side (0: the dataset's own size, 224 for
  // folders of mixed sizes) and evaluation's resize (0: size * 256 / 224). A size other than
  // a fixed-size dataset's own switches it to the resized-crop pipeline too.
  int64_t size = 0;
  int64_t resize = 0;
  // Decode JPEGs at 1/2, 1/4 or 1/8 where the training crop is shrunk to `size` anyway.
  bool reduced_decode = true;
  // RandomResizedCrop's smallest area fraction: torchvision's 0.08 is ImageNet's; photos
  // whose object fills a small part of the frame learn faster with a larger one.
  double crop_scale = 0.08;
  // The convolutions' compute type: "f32", or "bf16" (mixed precision, nn/precision.h).
  // bf16 needs AVX512_BF16; without it the run says so in one line and trains f32, and
  // config.json records "f32".
  std::string precision = "f32";
  // Hold out this fraction of train (seeded, stratified) as the test set; 0: the dataset's
  // own test split.
  double val_split = 0.0;
  // Loader threads decoding and transforming samples (0: in the training thread).
  int64_t workers = 2;
  // Unreadable images are replaced and listed in bad_images.txt instead of stopping.
  bool skip_bad_images = false;
  uint64_t seed = 1;
  std::string out = "runs/resnet20-fashion-mnist";
  int threads = 0;  // 0: all cores
  int64_t eval_batch = 500;
  // Record each conv weight's gradient norm for the first N steps (the seed's
  // vanishing-gradient picture); 0 = off.
  int64_t grad_norm_steps = 0;
  // steps.csv's window: the mean training loss and accuracy of every this many steps (not
  // recorded in config.json: a resumed run takes the invocation's).
  int64_t log_every = 20;
  // Stop (saving a checkpoint, as Ctrl-C does) after this many steps in this process;
  // 0 = never. For tests of --resume.
  int64_t max_steps = 0;
  // Also write last.* every this many steps inside an epoch (0: at each epoch's end only),
  // so that a kill loses at most this many steps.
  int64_t save_every = 0;
  // A checkpoint that cannot be written (a full disk) ends the run with an error, the
  // previous checkpoint intact; with this, the run says so and goes on.
  bool keep_going_on_write_error = false;
  // Fine-tuning (fine_tune.h). Starting weights: a torchvision state_dict or a checkpoint
  // of ours as safetensors; empty = from scratch. A classifier of another class count is
  // re-initialised.
  std::string init;
  // Comma-separated module paths to freeze, or "backbone" (nn/freeze.h); empty = none.
  std::string freeze;
  // The learning rate of every parameter outside the classifier "fc", as a multiple of
  // the schedule's (PyTorch param groups); 1 = one rate for all.
  double lr_backbone = 1.0;
  // Decay of an exponential moving average of the weights and buffers (ema.h), evaluated
  // and saved beside them; 0 = off.
  double ema = 0.0;
  // Beta(alpha, alpha) MixUp and CutMix of each training batch (mixup.h); 0 = off.
  double mixup = 0.0;
  double cutmix = 0.0;
  // Test-time augmentation: each test image's logits are the mean of its own and its
  // mirror image's (left-right flip).
  bool test_flip = false;
  // Data-parallel runs (mpirun -np N resnet train): BatchNorm statistics over the whole
  // global batch (all ranks' samples) rather than each rank's own, and the size of the
  // gradient buckets reduced together (dist/gradient_reducer.h). A single process ignores
  // both.
  bool sync_bn = false;
  double bucket_mb = 4.0;

  std::string to_json() const;
  static TrainConfig from_json(const std::string& text, const std::string& path);
};

struct TrainResult {
  double best_test_acc = 0.0;
  double last_test_acc = 0.0;
  int64_t epochs_done = 0;
  bool interrupted = false;
};

// Set from a signal handler to stop at the next batch boundary with a checkpoint. A request
// made while train() is setting up (opening the data, computing its statistics) stops it
// before the first step, with nothing saved. train() clears the flag when it returns
// having honoured it; a request made before train() is called is honoured too.
std::atomic<bool>& stop_requested();

// Runs (or, with resume, continues) training. Progress goes to stdout: a progress bar on
// a terminal, plain lines otherwise.
TrainResult train(TrainConfig config, bool resume);

// The same on every rank of `comm`, data-parallel (every rank calls it with the same
// arguments): --batch is the global batch, each rank trains on its contiguous share of
// every batch of the one-process order, and the gradients are summed over the ranks
// during backward (dist/gradient_reducer.h), so the ranks' weights stay identical. Rank 0
// alone reads and writes --out and prints; rank 0's weights and state start every rank.
// One rank: exactly train(config, resume).
TrainResult train(TrainConfig config, bool resume, dist::Communicator& comm);

}  // namespace resnet::train
