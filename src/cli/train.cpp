// resnet train: trains a zoo network on a dataset (Fashion-MNIST by default), writing
// metrics, checkpoints and curves into --out. With no arguments it runs the README's main
// job: a CIFAR-style ResNet-20 on Fashion-MNIST for a few minutes.

#include <csignal>
#include <cstdio>
#include <iostream>

#include "../mpi/world.h"
#include "command.h"
#include "recipes.h"
#include "resnet/data/open_dataset.h"
#include "resnet/dist/communicator.h"
#include "resnet/train/trainer.h"

namespace resnet::cli {

namespace {
volatile std::sig_atomic_t interrupted = 0;

extern "C" void on_interrupt(int) {
  // First Ctrl-C: finish the batch (or the set-up), save, exit. A second one kills as usual.
  interrupted = 1;
  train::stop_requested() = true;
  std::signal(SIGINT, SIG_DFL);
}
// Data-parallel: rank 0 alone prints; an error every rank found alike is printed once and
// ends every rank normally, any other ends every rank at once (MPI_Abort) naming the rank.
train::TrainResult train_on(dist::Communicator& comm, const train::TrainConfig& config,
                            bool resume) {
  if (!comm.distributed()) return train::train(config, resume, comm);
  if (!comm.is_root()) std::freopen("/dev/null", "w", stdout);
  try {
    return train::train(config, resume, comm);
  } catch (const dist::AgreedError& e) {
    if (comm.is_root()) std::cerr << "resnet: error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    comm.abort(e.what());
  }
  std::cerr.flush();
  throw dist::AgreedError("");  // the caller exits with status 1
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a network (default: resnet20 on Fashion-MNIST)");
  auto c = std::make_shared<train::TrainConfig>();
  auto resume = std::make_shared<bool>(false);
  std::vector<std::string> recipe_names;
  for (const Recipe& r : train_recipes()) recipe_names.push_back(r.name);
  cmd->add_option("--recipe", c->recipe, recipes_help())->check(CLI::IsMember(recipe_names));
  cmd->add_option("--model", c->model,
                  "Zoo name (resnet20 ... resnet110, plain20 ..., resnet18 ...)")
      ->capture_default_str();
  cmd->add_option("--data", c->data, data::dataset_spec_help())->capture_default_str();
  cmd->add_option("--epochs", c->epochs, "Epochs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--batch", c->batch, "Batch size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--lr", c->lr, "Base (or peak, for onecycle) learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--momentum", c->momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--nesterov", c->nesterov, "Nesterov momentum (true/false)")
      ->capture_default_str();
  cmd->add_option("--weight-decay", c->weight_decay, "L2 weight decay")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option(
         "--decay-bn-and-bias", c->decay_bn_and_bias,
         "Apply weight decay to BN parameters and biases too (PyTorch's default; true/false)")
      ->capture_default_str();
  cmd->add_option(
         "--schedule", c->schedule,
         "constant | multistep:M1,M2[:GAMMA] | cosine[:ETA_MIN] | onecycle[:PCT[:DIV[:FINAL_DIV]]]")
      ->capture_default_str();
  cmd->add_option("--warmup", c->warmup_steps, "Linear warm-up steps")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--label-smoothing", c->label_smoothing, "Label smoothing")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--crop-padding", c->crop_padding,
                  "Random crop with this zero padding (0: no crop)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--flip", c->flip, "Random horizontal flips (true/false)")->capture_default_str();
  cmd->add_option("--erasing", c->erasing, "Random erasing probability (0: off)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--size", c->size,
                  "Crop side (0: the dataset's own size; 224 for folders of mixed sizes); "
                  "another size crops with RandomResizedCrop")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--resize", c->resize,
                  "Evaluation: shorter side before the center crop (0: size * 256 / 224)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--crop-scale", c->crop_scale,
                  "RandomResizedCrop's smallest area fraction of the image (torchvision: 0.08)")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd->add_option("--precision", c->precision,
                  "Convolutions in f32, or bf16 mixed precision (bf16 inputs, weights and "
                  "gradients, f32 accumulation, f32 master weights; needs AVX512_BF16)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--reduced-decode", c->reduced_decode,
                  "Decode JPEGs at 1/2, 1/4 or 1/8 when the crop allows (true/false)")
      ->capture_default_str();
  cmd->add_option("--val-split", c->val_split,
                  "Hold out this fraction of train (stratified, seeded) as the test set")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  cmd->add_option("--workers", c->workers,
                  "Loader threads decoding and transforming images (0: in the training thread)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--skip-bad-images", c->skip_bad_images,
                  "Replace unreadable images by the next readable one and list them in "
                  "bad_images.txt (true/false)")
      ->capture_default_str();
  cmd->add_option("--seed", c->seed, "Seed of weights, shuffling and augmentation")
      ->capture_default_str();
  cmd->add_option("--out", c->out, "Output directory")->capture_default_str();
  cmd->add_option("--threads", c->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--num-classes", c->model_options.num_classes,
                  "Classifier outputs (default: the data's class count; given, it must match)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--shortcut", c->model_options.cifar_shortcut,
                  "CIFAR networks: A (zero-pad) or B (projection)")
      ->check(CLI::IsMember({'A', 'B'}));
  cmd->add_flag("--zero-init-residual", c->model_options.zero_init_residual,
                "Start residual branches at zero");
  cmd->add_option("--grad-norm-steps", c->grad_norm_steps,
                  "Record every conv weight's gradient norm for the first N steps (grad_norms.csv)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--log-every", c->log_every,
                  "steps.csv: mean training loss and accuracy of every N steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-steps", c->max_steps,
                  "Stop after N steps in this run, saving as Ctrl-C does")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--init", c->init,
                  "Start from these weights (a torchvision state_dict or a checkpoint, as "
                  "safetensors); a classifier of another class count is re-initialised")
      ->check(CLI::ExistingFile);
  cmd->add_option("--freeze", c->freeze,
                  "Freeze these comma-separated modules (conv1,bn1,layer1 or layer3.2), or "
                  "'backbone' (all but fc): no gradient, BN in eval mode");
  cmd->add_option("--lr-backbone", c->lr_backbone,
                  "Learning rate of everything but fc, as a multiple of the schedule's")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--ema", c->ema,
                  "Keep an exponential moving average of the weights with this decay "
                  "(e.g. 0.999), evaluated and saved beside them (0: off)")
      ->check(CLI::Range(0.0, 0.999999999));
  cmd->add_flag("--test-flip", c->test_flip,
                "Test each image and its mirror, averaging the logits (test-time augmentation)");
  cmd->add_option("--mixup", c->mixup, "MixUp with lambda ~ Beta(A, A) (0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cutmix", c->cutmix,
                  "CutMix with lambda ~ Beta(A, A) (0: off; with --mixup, one of the two per "
                  "batch)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--save-every", c->save_every,
                  "Also write last.* every N steps inside an epoch (0: at each epoch's end only)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--keep-going-on-write-error", c->keep_going_on_write_error,
                "When a checkpoint cannot be written (a full disk), warn and train on instead "
                "of stopping");
  cmd->add_flag("--resume", *resume,
                "Continue the run in --out exactly where it stopped (from its config.json when "
                "it stopped before its first checkpoint)");
  cmd->add_flag("--sync-bn", c->sync_bn,
                "Under mpirun: BatchNorm statistics of the whole global batch (all ranks), not "
                "each rank's own");
  cmd->add_option("--bucket-mb", c->bucket_mb,
                  "Under mpirun: gradients reduced together, in MB per bucket")
      ->check(CLI::Range(0.001, 1024.0))
      ->capture_default_str();
  auto timeout = std::make_shared<double>(30.0);
  cmd->add_option("--comm-timeout", *timeout,
                  "Under mpirun: seconds a rank waits for the others before stopping the run")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  cmd->callback([cmd, c, resume, timeout] {
    if (!c->recipe.empty()) apply_recipe(*cmd, c->recipe);
    std::unique_ptr<dist::Communicator> comm = mpi::world(*timeout);
    train::stop_requested() = false;
    interrupted = 0;
    std::signal(SIGINT, on_interrupt);
    // A file-size limit (ulimit -f) makes a write fail with EFBIG, reported as a failed
    // checkpoint, instead of killing the process.
    std::signal(SIGXFSZ, SIG_IGN);
    train::TrainResult r;
    try {
      r = train_on(*comm, *c, *resume);
    } catch (const dist::AgreedError&) {
      if (comm->distributed()) {
        comm.reset();  // MPI_Finalize
        std::exit(1);
      }
      throw;
    }
    std::signal(SIGINT, SIG_DFL);
    if (r.interrupted) {
      comm.reset();                     // MPI_Finalize before exiting
      if (interrupted) std::exit(130);  // the shell's convention for Ctrl-C
      return;
    }
    std::printf("best test accuracy %.4f, last %.4f\n", r.best_test_acc, r.last_test_acc);
  });
}

}  // namespace resnet::cli
