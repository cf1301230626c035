#include <parla/error.hpp>
#include <parla/placement.hpp>

namespace parla {

namespace {

std::string spec_name(const DeviceSpec& d) {
  if (d.kind == DeviceKind::cpu) return "cpu";
  if (d.index < 0) return "gpu";
  return "gpu(" + std::to_string(d.index) + ")";
}

std::string option_name(const PlacementOption& o) {
  std::string s;
  if (o.devices.size() == 1) {
    s = spec_name(o.devices.front());
  } else {
    s = "all_of(";
    for (std::size_t i = 0; i < o.devices.size(); ++i) s += (i ? ", " : "") + spec_name(o.devices[i]);
    s += ")";
  }
  if (o.resources) {
    s += ".with(vcus=" + std::to_string(o.resources->vcus) + ", memory=" + std::to_string(o.resources->memory) + ")";
  }
  return s;
}

Placement single(DeviceKind kind, int index) {
  return Placement({PlacementOption{{DeviceSpec{kind, index}}, std::nullopt}});
}

}  // namespace

Placement Placement::with(Resources resources) const {
  std::vector<PlacementOption> opts = m_options;
  if (opts.empty()) opts.push_back(PlacementOption{{DeviceSpec{DeviceKind::cpu, 0}}, std::nullopt});
  for (auto& o : opts) o.resources = resources;
  return Placement(std::move(opts));
}

std::string Placement::to_string() const {
  if (m_options.empty()) return "cpu";
  if (m_options.size() == 1) return option_name(m_options.front());
  std::string s = "any_of(";
  for (std::size_t i = 0; i < m_options.size(); ++i) s += (i ? ", " : "") + option_name(m_options[i]);
  return s + ")";
}

namespace detail {

CpuTag::operator Placement() const { return single(DeviceKind::cpu, 0); }
Placement CpuTag::operator()(int index) const { return single(DeviceKind::cpu, index); }
Placement CpuTag::with(Resources r) const { return Placement(*this).with(r); }

GpuTag::operator Placement() const { return single(DeviceKind::gpu, -1); }
Placement GpuTag::operator()(int index) const {
  if (index < 0) throw Error("gpu(" + std::to_string(index) + "): a GPU index is >= 0 (use parla::gpu for any GPU)");
  return single(DeviceKind::gpu, index);
}
Placement GpuTag::with(Resources r) const { return Placement(*this).with(r); }

}  // namespace detail

Placement any_of(std::initializer_list<Placement> choices) {
  std::vector<PlacementOption> opts;
  for (const Placement& p : choices) {
    if (p.is_default()) {
      opts.push_back(PlacementOption{{DeviceSpec{DeviceKind::cpu, 0}}, std::nullopt});
    } else {
      opts.insert(opts.end(), p.options().begin(), p.options().end());
    }
  }
  if (opts.empty()) throw Error("any_of() needs at least one placement");
  return Placement(std::move(opts));
}

Placement all_of(std::initializer_list<Placement> parts) {
  PlacementOption combined;
  for (const Placement& p : parts) {
    if (p.is_default()) {
      combined.devices.push_back(DeviceSpec{DeviceKind::cpu, 0});
      continue;
    }
    if (p.options().size() != 1) {
      throw Error("all_of(): each part must name one device set, but " + p.to_string() +
                  " is a choice; write any_of(all_of(...), all_of(...)) instead");
    }
    const PlacementOption& o = p.options().front();
    combined.devices.insert(combined.devices.end(), o.devices.begin(), o.devices.end());
    if (o.resources) combined.resources = o.resources;
  }
  if (combined.devices.empty()) throw Error("all_of() needs at least one placement");
  return Placement({std::move(combined)});
}

}  // namespace parla
