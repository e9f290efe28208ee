#include "resnet/train/plot_svg.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <locale>
#include <sstream>

#include "resnet/core/error.h"
#include "resnet/io/atomic_file.h"

namespace resnet::train {

namespace {

// Panel geometry in SVG user units (pixels at 100%): room on the left for tick labels and
// the rotated y label, at the bottom for tick labels and the x label.
constexpr double kPanelWidth = 480, kPanelHeight = 320;
constexpr double kLeft = 70, kRight = 20, kTop = 40, kBottom = 52;
constexpr double kPlotWidth = kPanelWidth - kLeft - kRight;
constexpr double kPlotHeight = kPanelHeight - kTop - kBottom;

// matplotlib's tab10, so the curves look like the ones people know from Python.
const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// Streams in the classic locale, so that a user's LC_NUMERIC never turns 0.5 into "0,5"
// inside coordinates.
std::ostringstream classic_stream() {
  std::ostringstream s;
  s.imbue(std::locale::classic());
  return s;
}

// A coordinate: one decimal is finer than a pixel.
std::string coord(double v) {
  std::ostringstream s = classic_stream();
  s.setf(std::ios::fixed);
  s.precision(1);
  s << (std::abs(v) < 0.05 ? 0.0 : v);
  return s.str();
}

std::string fixed(double v, int decimals) {
  std::ostringstream s = classic_stream();
  s.setf(std::ios::fixed);
  s.precision(decimals);
  s << v;
  return s.str();
}

// A linear tick label with just enough decimals for the step (0.25 steps need 2).
std::string linear_label(double v, double step) {
  int decimals = 0;
  for (double scaled = step;
       decimals < 12 && std::abs(scaled - std::round(scaled)) > 1e-6 * std::abs(scaled);
       scaled *= 10) {
    ++decimals;
  }
  if (std::abs(v) < step * 1e-9) v = 0;  // no "-0.0"
  return fixed(v, decimals);
}

// A log-axis label: plain decimals near 1, powers of ten beyond (1e-05, 1e+04).
std::string log_label(double v) {
  const double e = std::floor(std::log10(v) + 1e-9);
  if (e >= -3 && e <= 3) return linear_label(v, std::pow(10.0, std::min(e, 0.0)));
  std::ostringstream s = classic_stream();
  s.setf(std::ios::scientific);
  s.precision(0);
  s << v;
  return s.str();
}

struct Axis {
  double lo = 0, hi = 1;      // in axis units (log10 of the value on a log axis)
  std::vector<double> ticks;  // in axis units
  std::vector<std::string> labels;
};

// [lo, hi] with lo < hi: a single value gets room around it, at least `min_pad` on each
// side (a one-epoch run spans epochs 0 to 2, not 0.9 to 1.1).
void widen_degenerate(double& lo, double& hi, double min_pad = 0) {
  if (hi > lo) return;
  const double pad = std::max(min_pad, lo == 0 ? 1.0 : std::abs(lo) * 0.1);
  lo -= pad;
  hi += pad;
}

Axis linear_axis(double lo, double hi, std::optional<double> pin_lo, std::optional<double> pin_hi) {
  if (pin_lo) lo = *pin_lo;
  if (pin_hi) hi = *pin_hi;
  if (hi <= lo) {
    // Data entirely beyond one pinned end: keep the pin and give the other side room.
    if (pin_lo && !pin_hi)
      hi = lo + 1;
    else if (pin_hi && !pin_lo)
      lo = hi - 1;
    else
      widen_degenerate(lo, hi);
  }
  std::vector<double> ticks = nice_ticks(lo, hi, 6);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
  Axis axis;
  axis.lo = pin_lo ? lo : ticks.front();
  axis.hi = pin_hi ? hi : ticks.back();
  const double eps = step * 1e-9;
  for (double t : ticks) {
    if (t < axis.lo - eps || t > axis.hi + eps) continue;
    axis.ticks.push_back(t);
    axis.labels.push_back(linear_label(t, step));
  }
  return axis;
}

// Decades, with 2 and 5 in between when the axis spans no more than two decades.
Axis log_axis(double lo, double hi, std::optional<double> pin_lo, std::optional<double> pin_hi) {
  double llo = std::floor(std::log10(lo) + 1e-9), lhi = std::ceil(std::log10(hi) - 1e-9);
  if (pin_lo) llo = std::log10(*pin_lo);
  if (pin_hi) lhi = std::log10(*pin_hi);
  if (lhi <= llo) {
    if (pin_hi && !pin_lo)
      llo = lhi - 1;
    else
      lhi = llo + 1;
  }
  Axis axis;
  axis.lo = llo;
  axis.hi = lhi;
  const bool minor = lhi - llo <= 2.0 + 1e-9;
  for (double e = std::floor(llo); e <= std::ceil(lhi); ++e) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m != 1.0 && !minor) continue;
      const double t = e + std::log10(m);
      if (t < llo - 1e-9 || t > lhi + 1e-9) continue;
      axis.ticks.push_back(t);
      axis.labels.push_back(log_label(m * std::pow(10.0, e)));
    }
  }
  return axis;
}

bool drawable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

void check_chart(const Chart& chart) {
  for (const Series& s : chart.series) {
    RESNET_CHECK(s.x.size() == s.y.size(), "plot '" << chart.title << "': series '" << s.label
                                                    << "': expected as many x as y values, got "
                                                    << s.x.size() << " and " << s.y.size());
  }
  for (const auto& pin : {chart.y_min, chart.y_max}) {
    RESNET_CHECK(!pin || (std::isfinite(*pin) && (!chart.log_y || *pin > 0)),
                 "plot '" << chart.title << "': expected a finite"
                          << (chart.log_y ? ", positive" : "") << " y_min and y_max, got " << *pin);
  }
  RESNET_CHECK(!chart.y_min || !chart.y_max || *chart.y_min < *chart.y_max,
               "plot '" << chart.title << "': expected y_min < y_max, got " << *chart.y_min
                        << " and " << *chart.y_max);
}

void render_panel(std::ostringstream& svg, const Chart& chart, int index, double ox, double oy) {
  // Ranges of the points that will be drawn.
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const Series& s : chart.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!drawable(s.x[i], s.y[i], chart.log_y)) continue;
      xlo = std::min(xlo, s.x[i]);
      xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, s.y[i]);
      yhi = std::max(yhi, s.y[i]);
    }
  }
  if (xlo > xhi) {  // nothing to draw: an empty frame
    xlo = 0, xhi = 1;
    ylo = chart.log_y ? 1 : 0, yhi = chart.log_y ? 10 : 1;
  }
  widen_degenerate(xlo, xhi, 1.0);
  const Axis xa = linear_axis(xlo, xhi, std::nullopt, std::nullopt);
  const Axis ya = chart.log_y ? log_axis(ylo, yhi, chart.y_min, chart.y_max)
                              : linear_axis(ylo, yhi, chart.y_min, chart.y_max);
  auto px = [&](double x) { return kLeft + (x - xa.lo) / (xa.hi - xa.lo) * kPlotWidth; };
  auto py = [&](double y) {
    const double v = chart.log_y ? std::log10(y) : y;
    return kTop + kPlotHeight - (v - ya.lo) / (ya.hi - ya.lo) * kPlotHeight;
  };
  auto py_axis = [&](double t) {
    return kTop + kPlotHeight - (t - ya.lo) / (ya.hi - ya.lo) * kPlotHeight;
  };

  std::ostringstream clip_id = classic_stream();
  clip_id << "plot-area-" << index;
  const std::string clip = clip_id.str();
  svg << "<g transform=\"translate(" << coord(ox) << "," << coord(oy) << ")\">\n";
  svg << "<defs><clipPath id=\"" << clip << "\"><rect x=\"" << coord(kLeft) << "\" y=\""
      << coord(kTop) << "\" width=\"" << coord(kPlotWidth) << "\" height=\"" << coord(kPlotHeight)
      << "\"/></clipPath></defs>\n";
  svg << "<text x=\"" << coord(kPanelWidth / 2) << "\" y=\"24\" text-anchor=\"middle\" "
      << "font-size=\"14\" font-weight=\"bold\">" << xml_escape(chart.title) << "</text>\n";

  // Grid lines and tick labels.
  svg << "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (double t : xa.ticks) {
    svg << "<line x1=\"" << coord(px(t)) << "\" y1=\"" << coord(kTop) << "\" x2=\"" << coord(px(t))
        << "\" y2=\"" << coord(kTop + kPlotHeight) << "\"/>\n";
  }
  for (double t : ya.ticks) {
    svg << "<line x1=\"" << coord(kLeft) << "\" y1=\"" << coord(py_axis(t)) << "\" x2=\""
        << coord(kLeft + kPlotWidth) << "\" y2=\"" << coord(py_axis(t)) << "\"/>\n";
  }
  svg << "</g>\n<g fill=\"#333333\">\n";
  for (size_t i = 0; i < xa.ticks.size(); ++i) {
    svg << "<text x=\"" << coord(px(xa.ticks[i])) << "\" y=\"" << coord(kTop + kPlotHeight + 16)
        << "\" text-anchor=\"middle\">" << xa.labels[i] << "</text>\n";
  }
  for (size_t i = 0; i < ya.ticks.size(); ++i) {
    svg << "<text x=\"" << coord(kLeft - 6) << "\" y=\"" << coord(py_axis(ya.ticks[i]) + 4)
        << "\" text-anchor=\"end\">" << ya.labels[i] << "</text>\n";
  }
  svg << "</g>\n";
  svg << "<rect x=\"" << coord(kLeft) << "\" y=\"" << coord(kTop) << "\" width=\""
      << coord(kPlotWidth) << "\" height=\"" << coord(kPlotHeight)
      << "\" fill=\"none\" stroke=\"#555555\"/>\n";
  svg << "<text x=\"" << coord(kLeft + kPlotWidth / 2) << "\" y=\"" << coord(kPanelHeight - 10)
      << "\" text-anchor=\"middle\">" << xml_escape(chart.x_label) << "</text>\n";
  svg << "<text transform=\"translate(16," << coord(kTop + kPlotHeight / 2)
      << ") rotate(-90)\" text-anchor=\"middle\">" << xml_escape(chart.y_label) << "</text>\n";

  // The curves: one path per run of drawable points, a dot for a run of one.
  std::vector<std::string> colors;
  svg << "<g clip-path=\"url(#" << clip << ")\" fill=\"none\" stroke-width=\"2\" "
      << "stroke-linejoin=\"round\">\n";
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    const std::string color = s.color.empty() ? kPalette[k % std::size(kPalette)] : s.color;
    colors.push_back(color);
    const std::string style =
        "stroke=\"" + xml_escape(color) + "\"" + (s.dashed ? " stroke-dasharray=\"6,4\"" : "");
    size_t i = 0;
    while (i < s.x.size()) {
      if (!drawable(s.x[i], s.y[i], chart.log_y)) {
        ++i;
        continue;
      }
      size_t end = i;
      while (end < s.x.size() && drawable(s.x[end], s.y[end], chart.log_y)) ++end;
      if (end - i == 1) {
        svg << "<circle cx=\"" << coord(px(s.x[i])) << "\" cy=\"" << coord(py(s.y[i]))
            << "\" r=\"3\" fill=\"" << xml_escape(color) << "\" stroke=\"none\"/>\n";
      } else {
        svg << "<path " << style << " d=\"";
        for (size_t j = i; j < end; ++j) {
          svg << (j == i ? "M" : " L") << coord(px(s.x[j])) << "," << coord(py(s.y[j]));
        }
        svg << "\"/>\n";
      }
      i = end;
    }
  }
  svg << "</g>\n";

  // The legend goes in the corner of the plot that hides the fewest curve samples (loss
  // curves leave the top right empty, accuracy curves the bottom right). Its width is
  // estimated from the longest label, since SVG cannot measure text before rendering.
  if (!chart.series.empty()) {
    size_t longest = 0;
    for (const Series& s : chart.series) longest = std::max(longest, s.label.size());
    const double w = 40 + 6.5 * static_cast<double>(longest);
    const double h = 8 + 16 * static_cast<double>(chart.series.size());
    const double right = kLeft + kPlotWidth - w - 8, left = kLeft + 8;
    const double top = kTop + 8, bottom = kTop + kPlotHeight - h - 8;
    const double corners[4][2] = {{right, top}, {right, bottom}, {left, top}, {left, bottom}};
    size_t hidden[4] = {0, 0, 0, 0};
    for (const Series& s : chart.series) {
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!drawable(s.x[i], s.y[i], chart.log_y)) continue;
        const bool next = i + 1 < s.x.size() && drawable(s.x[i + 1], s.y[i + 1], chart.log_y);
        // Samples along the segment to the next point too, so a line crossing the box
        // between two far-apart points counts.
        for (int f = 0; f < (next ? 4 : 1); ++f) {
          const double t = f / 4.0;
          const double sx = px(s.x[i]) + (next ? t * (px(s.x[i + 1]) - px(s.x[i])) : 0);
          const double sy = py(s.y[i]) + (next ? t * (py(s.y[i + 1]) - py(s.y[i])) : 0);
          for (int c = 0; c < 4; ++c) {
            hidden[c] += sx >= corners[c][0] && sx <= corners[c][0] + w && sy >= corners[c][1] &&
                         sy <= corners[c][1] + h;
          }
        }
      }
    }
    const size_t best = static_cast<size_t>(std::min_element(hidden, hidden + 4) - hidden);
    const double lx = corners[best][0], ly = corners[best][1];
    svg << "<g>\n<rect x=\"" << coord(lx) << "\" y=\"" << coord(ly) << "\" width=\"" << coord(w)
        << "\" height=\"" << coord(h)
        << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#cccccc\"/>\n";
    for (size_t k = 0; k < chart.series.size(); ++k) {
      const double y = ly + 12 + 16 * static_cast<double>(k);
      svg << "<line x1=\"" << coord(lx + 6) << "\" y1=\"" << coord(y) << "\" x2=\""
          << coord(lx + 28) << "\" y2=\"" << coord(y) << "\" stroke=\"" << xml_escape(colors[k])
          << "\" stroke-width=\"2\"" << (chart.series[k].dashed ? " stroke-dasharray=\"6,4\"" : "")
          << "/>\n";
      svg << "<text x=\"" << coord(lx + 34) << "\" y=\"" << coord(y + 4) << "\">"
          << xml_escape(chart.series[k].label) << "</text>\n";
    }
    svg << "</g>\n";
  }
  svg << "</g>\n";
}

// --- metrics.csv ---

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::vector<std::string> split_fields(std::string line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  std::vector<std::string> fields;
  std::stringstream s(line);
  for (std::string f; std::getline(s, f, ',');) fields.push_back(trim(f));
  if (!line.empty() && line.back() == ',') fields.push_back("");
  return fields;
}

double parse_field(const std::string& text, const std::string& path, int64_t line,
                   const std::string& column) {
  if (text.empty() || text == "nan" || text == "NaN")
    return std::numeric_limits<double>::quiet_NaN();
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  RESNET_CHECK(ec == std::errc() && ptr == text.data() + text.size(),
               path << ":" << line << ": column '" << column << "': expected a number, got '"
                    << text << "'");
  return v;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  RESNET_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi && target >= 1,
               "nice_ticks: expected finite lo < hi and target >= 1, got " << lo << ", " << hi
                                                                           << ", " << target);
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  const double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
  // Ticks as integer multiples of the step, so that 0.1 * 3 does not drift to 0.30000004.
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double i = first; i <= last; ++i) ticks.push_back(i * step);
  return ticks;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_svg(const std::vector<Chart>& panels, int columns) {
  RESNET_CHECK(!panels.empty(), "render_svg: expected at least one chart, got none");
  RESNET_CHECK(columns >= 1, "render_svg: expected at least 1 column, got " << columns);
  for (const Chart& c : panels) check_chart(c);
  const size_t cols = std::min(static_cast<size_t>(columns), panels.size());
  const size_t rows = (panels.size() + cols - 1) / cols;
  const double width = kPanelWidth * static_cast<double>(cols);
  const double height = kPanelHeight * static_cast<double>(rows);

  std::ostringstream svg = classic_stream();
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << coord(width) << "\" height=\""
      << coord(height) << "\" viewBox=\"0 0 " << coord(width) << " " << coord(height)
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg << "<rect width=\"" << coord(width) << "\" height=\"" << coord(height)
      << "\" fill=\"white\"/>\n";
  for (size_t i = 0; i < panels.size(); ++i) {
    render_panel(svg, panels[i], static_cast<int>(i), kPanelWidth * static_cast<double>(i % cols),
                 kPanelHeight * static_cast<double>(i / cols));
  }
  svg << "</svg>\n";
  return svg.str();
}

void write_svg(const std::string& path, const std::vector<Chart>& panels, int columns) {
  io::write_file_atomic(path, render_svg(panels, columns));
}

std::vector<Chart> training_curves(const std::string& path) {
  std::ifstream in(path);
  RESNET_CHECK(in.is_open(),
               path << ": expected a readable metrics.csv, got " << std::strerror(errno));
  const std::vector<std::string> needed = {"epoch", "train_loss", "train_acc", "test_loss",
                                           "test_acc"};
  const char* kHeader = "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds";
  std::string line;
  RESNET_CHECK(std::getline(in, line),
               path << ": expected a header line " << kHeader << ", got an empty file");
  const std::vector<std::string> header = split_fields(line);
  std::vector<size_t> at;  // field index of each needed column
  for (const std::string& name : needed) {
    auto it = std::find(header.begin(), header.end(), name);
    RESNET_CHECK(it != header.end(), path << ":1: expected a header with column '" << name << "' ("
                                          << kHeader << "), got '" << trim(line) << "'");
    at.push_back(static_cast<size_t>(it - header.begin()));
  }
  std::vector<std::vector<double>> columns(needed.size());
  for (int64_t number = 2; std::getline(in, line); ++number) {
    if (trim(line).empty()) continue;
    const std::vector<std::string> fields = split_fields(line);
    RESNET_CHECK(fields.size() == header.size(),
                 path << ":" << number << ": expected " << header.size()
                      << " comma-separated fields as in the header, got " << fields.size());
    for (size_t c = 0; c < needed.size(); ++c) {
      columns[c].push_back(parse_field(fields[at[c]], path, number, needed[c]));
    }
  }
  const std::vector<double>& epoch = columns[0];
  auto percent = [](std::vector<double> v) {
    for (double& x : v) x *= 100;
    return v;
  };
  Chart loss{"Loss", "epoch", "cross-entropy loss", {}, false, std::nullopt, std::nullopt};
  loss.series = {{"train", epoch, columns[1], kPalette[0], false},
                 {"test", epoch, columns[3], kPalette[1], true}};
  Chart accuracy{"Accuracy", "epoch", "accuracy (%)", {}, false, std::nullopt, std::nullopt};
  accuracy.series = {{"train", epoch, percent(columns[2]), kPalette[0], false},
                     {"test", epoch, percent(columns[4]), kPalette[1], true}};
  return {loss, accuracy};
}

}  // namespace resnet::train
