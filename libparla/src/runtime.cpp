#include <parla/error.hpp>
#include <parla/runtime.hpp>

#include "runtime_impl.hpp"
#include "task_space_state.hpp"

namespace parla {

Runtime::Runtime(RuntimeConfig config)
    : m_impl(std::make_unique<detail::RuntimeImpl>(*this, std::move(config))) {}

Runtime::~Runtime() = default;  // RuntimeImpl's destructor waits, reports and joins

Task Runtime::submit(SpawnOptions&& options, detail::TaskFunction&& body) {
  return Task(m_impl->submit(std::move(options), std::move(body)));
}

Task Runtime::submit_after(std::span<const Task> after, detail::TaskFunction&& body) {
  return Task(m_impl->submit_after(after, std::move(body)));
}

void Runtime::wait(const Dep& what) {
  std::vector<detail::Ref<detail::TaskRecord>> records;
  const auto& v = what.value();
  if (const Task* t = std::get_if<Task>(&v)) {
    if (!t->valid()) throw Error("wait() on an empty Task handle");
    detail::TaskRecord* r = t->record();
    // Finished already (a loop that waits for what it spawned a while ago): no list, no counts.
    if (r->m_runtime == m_impl.get() && r->finished()) {
      if (r->state() != TaskState::completed) m_impl->throw_failure(*r);
      return;
    }
    records.push_back(detail::Ref<detail::TaskRecord>::share(r));
  } else if (const TaskRef* r = std::get_if<TaskRef>(&v)) {
    if (!r->valid()) throw Error("wait() on an empty TaskRef");
    records.push_back(r->space()->get_or_create(r->key()));
  } else if (const TaskSlice* s = std::get_if<TaskSlice>(&v)) {
    for (const auto& k : s->keys()) records.push_back(s->space()->get_or_create(k));
  }
  m_impl->wait_records(std::move(records));
}

void Runtime::wait(const TaskSpace& space) {
  std::vector<detail::Ref<detail::TaskRecord>> records;
  for (auto& [key, rec] : space.state()->snapshot()) records.push_back(std::move(rec));
  m_impl->wait_records(std::move(records));
}

void Runtime::wait_all() { m_impl->wait_all(); }

const std::vector<const Device*>& Runtime::devices() const noexcept { return m_impl->devices(); }
int Runtime::num_gpus() const noexcept { return m_impl->num_gpus(); }
int Runtime::num_workers() const noexcept { return m_impl->config().num_workers; }
const RuntimeConfig& Runtime::config() const noexcept { return m_impl->config(); }
RuntimeStats Runtime::stats() const { return m_impl->stats(); }
std::optional<std::string> Runtime::unreported_failure(std::chrono::milliseconds grace) const {
  return m_impl->unreported_failure(grace);
}

void Runtime::add_wait_driver(std::shared_ptr<WaitDriver> driver) {
  m_impl->add_wait_driver(std::move(driver));
}

void Runtime::remove_wait_driver(const WaitDriver* driver) { m_impl->remove_wait_driver(driver); }

bool Runtime::on_worker_thread() const noexcept { return m_impl->on_worker_thread(); }

}  // namespace parla
