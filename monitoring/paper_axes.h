#pragma once
// The paper's three sweep axes: λ, the auxiliary image's resolution and its color bins. Their
// labels (in run names, Prometheus labels, summary.json, sweep.csv, tables and plots) and the
// config key each one is are spelled here only; monitoring/ is the lowest folder all of them use.

namespace agave::monitoring {

struct PaperAxis {
  const char* label;       // "aux_resolution"
  const char* config_key;  // "aux.resolution"
  const char* title;       // a plot's axis title
};

// In the order the paper discusses them, which leads tables and plots.
inline constexpr PaperAxis kPaperAxes[] = {
    {"lambda", "loss.lambda", "λ (KL weight)"},
    {"aux_resolution", "aux.resolution", "aux_resolution"},
    {"color_bins", "aux.color_bins", "color_bins"},
};

// Calls v(axis, field) for the three axis fields of a run's labels (RunLabels, SweepRow: the
// members lambda, aux_resolution and color_bins), in kPaperAxes' order.
template <class Labels, class Visit>
void visit_paper_axes(Labels& labels, Visit&& v) {
  v(kPaperAxes[0], labels.lambda);
  v(kPaperAxes[1], labels.aux_resolution);
  v(kPaperAxes[2], labels.color_bins);
}

}  // namespace agave::monitoring
