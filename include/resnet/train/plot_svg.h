#pragma once
// Line charts as standalone SVG, with no dependency beyond the standard library: what
// `resnet train` draws its training curves with, viewable in any browser.
//
// A Chart is one panel: title, axis labels, a legend, grid lines at "nice" ticks (steps of
// 1, 2 or 5 times a power of ten), and one polyline per Series. render_svg() lays several
// panels out in a grid of `columns` columns, row by row.
//
// Data: a series' x and y must have the same length (checked, naming the series). Points
// whose x or y is not finite (and, on a log axis, whose y is not positive) are left out and
// break the line there, so a missing value shows as a gap, never as a wild coordinate. A
// point with no drawn neighbour is marked with a dot, so a one-epoch run is visible.
// The axes span the drawn points, widened to whole ticks; y_min / y_max pin the y axis
// (points outside are clipped). log_y draws y on a log10 axis (for gradient norms).
// All text is escaped for XML.

#include <optional>
#include <string>
#include <vector>

namespace resnet::train {

struct Series {
  std::string label;         // legend entry
  std::vector<double> x, y;  // same length
  std::string color;         // any SVG colour ("#1f77b4"); empty: the next palette colour
  bool dashed = false;
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_y = false;
  std::optional<double> y_min, y_max;  // pin the y axis (on a log axis: positive values)
};

// The SVG document, panels in a grid of `columns` (>= 1) columns; at least one panel.
std::string render_svg(const std::vector<Chart>& panels, int columns);

// render_svg() written to `path`, replacing it atomically (io/atomic_file.h).
void write_svg(const std::string& path, const std::vector<Chart>& panels, int columns);

// Two panels from a trainer's metrics.csv (header epoch,train_loss,train_acc,test_loss,
// test_acc,lr,seconds; columns found by name, extra ones ignored; accuracies as
// fractions): loss (train, test) and accuracy in percent (train, test) against the epoch.
// An empty field or "nan" is a missing value (a gap). A missing column, a row with the
// wrong number of fields or a field that is not a number is refused, naming the file and
// the line.
std::vector<Chart> training_curves(const std::string& metrics_csv_path);

// Tick values covering [lo, hi] in steps of 1, 2 or 5 times a power of ten, about
// `target` of them, the first <= lo and the last >= hi (lo < hi, both finite).
std::vector<double> nice_ticks(double lo, double hi, int target);

// `text` with & < > " ' replaced by their XML entities.
std::string xml_escape(const std::string& text);

}  // namespace resnet::train
