#include "ucx_transport.hpp"

#include <ucp/api/ucp.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "parla/mpi/mpi_error.hpp"

namespace parla::mpi::ucx {

namespace {

using Clock = std::chrono::steady_clock;

/// How long start-up (connecting) and shutdown (closing endpoints) may take before they give
/// up instead of hanging the program.
constexpr auto k_connect_limit = std::chrono::seconds(60);
constexpr auto k_close_limit = std::chrono::seconds(10);

std::string ucs_error(const char* call, ucs_status_t status, const std::string& detail = {}) {
  std::string m = std::string("parla::mpi: ") + call + " failed";
  if (!detail.empty()) m += " (" + detail + ")";
  return m + ": " + ucs_status_string(status);
}

void check(ucs_status_t status, const char* call) {
  if (status != UCS_OK) throw std::runtime_error(ucs_error(call, status));
}

std::string describe(const Operation& op) {
  return std::string(op.kind == OpKind::send ? "to rank " : "from rank ") +
         std::to_string(op.peer) + ", tag " + std::to_string(op.user_tag) + " (MPI tag " +
         std::to_string(op.tag) + ")";
}

/// The 64-bit UCP tag: the sender's rank in the high 32 bits, the runtime's deterministic
/// (MPI-sized, non-negative) tag in the low 32. Received with a full mask, so a receive
/// matches only its source and its exact tag, as MPI_Irecv on (source, tag) would.
ucp_tag_t ucp_tag(int sender, int tag) noexcept {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(sender)) << 32) |
         static_cast<std::uint32_t>(tag);
}
constexpr ucp_tag_t k_full_mask = ~ucp_tag_t{0};

class UcxTransport;

/// One posted send or receive; `user_data` of its UCP request.
struct Pending {
  Operation op;
  UcxTransport* owner = nullptr;
  void* request = nullptr;
  bool abandoned = false;  // the engine gave up on it: free on completion, report nothing
};

class UcxTransport final : public P2pTransport {
 public:
  explicit UcxTransport(MPI_Comm comm) : m_comm(comm) {
    MPI_Comm_rank(comm, &m_rank);
    MPI_Comm_size(comm, &m_size);
    // Local start-up first, then agree: a rank whose UCX failed must not leave the others
    // waiting in the address exchange.
    std::string local_error;
    try {
      start_local();
    } catch (const std::exception& e) {
      local_error = e.what();
    }
    int ok = local_error.empty() ? 1 : 0;
    int all_ok = 0;
    check_mpi(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce",
              "UCX start-up");
    if (all_ok == 0) {
      release();
      throw std::runtime_error(
          !local_error.empty()
              ? local_error
              : std::string("parla::mpi: the UCX transport failed to start on another rank"));
    }
    try {
      exchange_and_connect();
      // Its own communicator for the shutdown barrier: it can never match a collective of
      // the runtime's that a failing rank left behind.
      check_mpi(MPI_Comm_dup(comm, &m_close_comm), "MPI_Comm_dup", "UCX shutdown");
    } catch (...) {
      release();
      throw;
    }
  }

  ~UcxTransport() override { release(); }
  UcxTransport(const UcxTransport&) = delete;
  UcxTransport& operator=(const UcxTransport&) = delete;

  [[nodiscard]] const char* name() const noexcept override { return "ucx"; }

  void post(Operation&& op) override {
    auto* p = new Pending{std::move(op), this, nullptr, false};
    m_pending.insert(p);
    Operation& o = p->op;

    ucp_request_param_t param{};
    // No immediate completion: every completion arrives through a callback, from progress().
    param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                         UCP_OP_ATTR_FIELD_DATATYPE | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
    param.user_data = p;
    param.datatype = ucp_dt_make_contig(1);
    // Memory type: buffers the runtime staged (host placement: host blocks, and simulated
    // or real GPU data copied to host) are host memory; say so and spare UCX the lookup.
    // A raw buffer is documented as host memory; only when this UCX handles CUDA memory is it
    // left to UCX's own detection, so a device pointer would then go as is.
    if (o.host_memory || !m_cuda_memory) {
      param.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMORY_TYPE;
      param.memory_type = UCS_MEMORY_TYPE_HOST;
    }
    const auto bytes = static_cast<std::size_t>(o.count);  // send/recv count bytes (MPI_BYTE)
    ucs_status_ptr_t r = nullptr;
    const char* call = nullptr;
    if (o.kind == OpKind::send) {
      call = "ucp_tag_send_nbx";
      param.cb.send = &UcxTransport::send_done;
      r = ucp_tag_send_nbx(m_eps[static_cast<std::size_t>(o.peer)], o.buffer, bytes,
                           ucp_tag(m_rank, o.tag), &param);
    } else {
      call = "ucp_tag_recv_nbx";
      param.cb.recv = &UcxTransport::recv_done;
      r = ucp_tag_recv_nbx(m_worker, o.buffer, bytes, ucp_tag(o.peer, o.tag), k_full_mask,
                           &param);
    }
    if (UCS_PTR_IS_ERR(r)) {
      m_pending.erase(p);
      m_completed.emplace_back(std::move(p->op), std::make_exception_ptr(std::runtime_error(
                                                     ucs_error(call, UCS_PTR_STATUS(r),
                                                               describe(p->op)))));
      delete p;
    } else if (r == nullptr) {
      // Completed at once despite NO_IMM_CMPL (not expected): report success.
      m_pending.erase(p);
      m_completed.emplace_back(std::move(p->op), nullptr);
      delete p;
    } else if (m_pending.count(p) != 0) {
      p->request = r;
    }
  }

  bool progress() override { return ucp_worker_progress(m_worker) != 0; }

  void take_completed(std::vector<std::pair<Operation, std::exception_ptr>>& out) override {
    for (auto& c : m_completed) out.push_back(std::move(c));
    m_completed.clear();
  }

  [[nodiscard]] std::size_t active() const noexcept override {
    return m_pending.size() - m_abandoned + m_completed.size();
  }

  void abandon(std::vector<Operation>& out) override {
    for (auto& [op, error] : m_completed) {
      // Finished but not yet handed back: hand back as abandoned (the engine fails them).
      out.push_back(std::move(op));
    }
    m_completed.clear();
    std::vector<void*> cancel;
    for (Pending* p : m_pending) {
      if (p->abandoned) continue;
      p->abandoned = true;
      ++m_abandoned;
      out.push_back(std::move(p->op));
      if (p->op.kind == OpKind::recv && p->request != nullptr) cancel.push_back(p->request);
    }
    // Outside the loop: a cancelled receive may call back (and leave m_pending) right away.
    for (void* request : cancel) ucp_request_cancel(m_worker, request);
  }

  void shutdown() override { release(); }

 private:
  static void send_done(void* request, ucs_status_t status, void* user_data) {
    auto* p = static_cast<Pending*>(user_data);
    p->owner->completed(p, request, status, static_cast<std::size_t>(p->op.count));
  }

  static void recv_done(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info,
                        void* user_data) {
    auto* p = static_cast<Pending*>(user_data);
    p->owner->completed(p, request, status, info != nullptr ? info->length : 0);
  }

  void completed(Pending* p, void* request, ucs_status_t status, std::size_t length) {
    if (request != nullptr) ucp_request_free(request);
    m_pending.erase(p);
    if (p->abandoned) {
      --m_abandoned;
      delete p;
      return;
    }
    Operation& op = p->op;
    std::exception_ptr error;
    const char* call = op.kind == OpKind::send ? "ucp_tag_send_nbx" : "ucp_tag_recv_nbx";
    if (status == UCS_ERR_MESSAGE_TRUNCATED) {
      error = std::make_exception_ptr(std::runtime_error(
          ucs_error(call, status, describe(op)) + ": the message is longer than the " +
          std::to_string(op.count) +
          " bytes expected; the sender and the receiver disagree about the message size"));
    } else if (status != UCS_OK) {
      error = std::make_exception_ptr(std::runtime_error(ucs_error(call, status, describe(op))));
    } else if (op.kind == OpKind::recv && length != static_cast<std::size_t>(op.count)) {
      error = std::make_exception_ptr(std::runtime_error(
          "parla::mpi: recv " + describe(op) + " (" + call + ") got " + std::to_string(length) +
          " elements but expected " + std::to_string(op.count) +
          ": the sender and the receiver disagree about the message size"));
    }
    m_completed.emplace_back(std::move(op), std::move(error));
    delete p;
  }

  void start_local() {
    ucp_config_t* config = nullptr;
    check(ucp_config_read(nullptr, nullptr, &config), "ucp_config_read");
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_ESTIMATED_NUM_EPS;
    params.features = UCP_FEATURE_TAG;
    params.estimated_num_eps = static_cast<std::size_t>(m_size);
    const ucs_status_t s = ucp_init(&params, config, &m_context);
    ucp_config_release(config);
    check(s, "ucp_init");

    ucp_context_attr_t attr{};
    attr.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES;
    check(ucp_context_query(m_context, &attr), "ucp_context_query");
    m_cuda_memory = (attr.memory_types & UCS_BIT(UCS_MEMORY_TYPE_CUDA)) != 0;

    ucp_worker_params_t wp{};
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    // Serialized: the engine thread and threads driving it in a wait call UCP, one at a time.
    wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;
    check(ucp_worker_create(m_context, &wp, &m_worker), "ucp_worker_create");
    check(ucp_worker_get_address(m_worker, &m_address, &m_address_length),
          "ucp_worker_get_address");
  }

  void exchange_and_connect() {
    const auto n = static_cast<std::size_t>(m_size);
    if (m_address_length > static_cast<std::size_t>(INT32_MAX)) {
      throw std::runtime_error("parla::mpi: the UCX worker address is too long");
    }
    int mine = static_cast<int>(m_address_length);
    std::vector<int> lengths(n);
    check_mpi(MPI_Allgather(&mine, 1, MPI_INT, lengths.data(), 1, MPI_INT, m_comm),
              "MPI_Allgather", "UCX worker address sizes");
    std::vector<int> offsets(n);
    long long total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      offsets[i] = static_cast<int>(total);
      total += lengths[i];
      if (total > INT32_MAX) throw std::runtime_error("parla::mpi: UCX addresses too long");
    }
    std::vector<unsigned char> all(static_cast<std::size_t>(total));
    check_mpi(MPI_Allgatherv(m_address, mine, MPI_BYTE, all.data(), lengths.data(),
                             offsets.data(), MPI_BYTE, m_comm),
              "MPI_Allgatherv", "UCX worker addresses");
    ucp_worker_release_address(m_worker, m_address);
    m_address = nullptr;

    m_eps.assign(n, nullptr);
    for (std::size_t i = 0; i < n; ++i) {
      ucp_ep_params_t ep{};
      ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
      ep.address = reinterpret_cast<const ucp_address_t*>(all.data() + offsets[i]);
      check(ucp_ep_create(m_worker, &ep, &m_eps[i]), "ucp_ep_create");
    }

    // Finish connecting now, every rank progressing, so a first message never waits for a
    // peer's wire-up: flush the worker (waits for the endpoints' connections), then a
    // non-blocking barrier, progressing UCX all along.
    ucp_request_param_t fp{};
    ucs_status_ptr_t flush = ucp_worker_flush_nbx(m_worker, &fp);
    if (UCS_PTR_IS_ERR(flush)) check(UCS_PTR_STATUS(flush), "ucp_worker_flush_nbx");
    MPI_Request barrier = MPI_REQUEST_NULL;
    bool barrier_posted = false;
    const auto deadline = Clock::now() + k_connect_limit;
    for (;;) {
      ucp_worker_progress(m_worker);
      if (flush != nullptr) {
        const ucs_status_t st = ucp_request_check_status(flush);
        if (st != UCS_INPROGRESS) {
          ucp_request_free(flush);
          flush = nullptr;
          check(st, "ucp_worker_flush_nbx");
        }
      }
      if (flush == nullptr && !barrier_posted) {
        check_mpi(MPI_Ibarrier(m_comm, &barrier), "MPI_Ibarrier", "UCX connection");
        barrier_posted = true;
      }
      if (barrier_posted) {
        int done = 0;
        check_mpi(MPI_Test(&barrier, &done, MPI_STATUS_IGNORE), "MPI_Test", "UCX connection");
        if (done != 0) break;
      }
      if (Clock::now() > deadline) {
        throw std::runtime_error("parla::mpi: the UCX endpoints did not connect within 60 s");
      }
      std::this_thread::yield();
    }
  }

  /// Closes the endpoints (flush mode, progressed until done while the other ranks do the
  /// same, then a barrier so no worker goes away while a peer still needs it), then destroys
  /// the worker and the context. Bounded in time: never hangs the program's end.
  void release() noexcept {
    if (m_worker != nullptr) {
      std::vector<void*> closing;
      // Flush mode normally; force when abandoned operations remain (a rendezvous send that
      // no receive will ever match would keep a flush waiting forever).
      for (int i = 0; i < 4 && m_abandoned > 0; ++i) ucp_worker_progress(m_worker);
      const bool force = m_abandoned > 0;
      for (ucp_ep_h& ep : m_eps) {
        if (ep == nullptr) continue;
        ucp_request_param_t p{};
        p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        p.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0;
        ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &p);
        if (UCS_PTR_IS_PTR(r)) closing.push_back(r);
        ep = nullptr;
      }
      int finalized = 0;
      MPI_Finalized(&finalized);
      MPI_Request barrier = MPI_REQUEST_NULL;
      bool barrier_posted = false;
      bool barrier_done = finalized != 0 || m_close_comm == MPI_COMM_NULL;
      const auto deadline = Clock::now() + k_close_limit;
      while (!closing.empty() || !barrier_done) {
        ucp_worker_progress(m_worker);
        for (std::size_t i = 0; i < closing.size();) {
          if (ucp_request_check_status(closing[i]) != UCS_INPROGRESS) {
            ucp_request_free(closing[i]);
            closing[i] = closing.back();
            closing.pop_back();
          } else {
            ++i;
          }
        }
        if (closing.empty() && !barrier_posted && !barrier_done) {
          barrier_posted = MPI_Ibarrier(m_close_comm, &barrier) == MPI_SUCCESS;
          if (!barrier_posted) barrier_done = true;
        }
        if (barrier_posted && !barrier_done) {
          int done = 0;
          if (MPI_Test(&barrier, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) done = 1;
          barrier_done = done != 0;
        }
        if (Clock::now() > deadline) {
          std::fprintf(stderr,
                       "parla::mpi: closing the UCX endpoints took over 10 s; destroying the "
                       "worker anyway\n");
          break;
        }
        std::this_thread::yield();
      }
      if (barrier_done && finalized == 0 && m_close_comm != MPI_COMM_NULL) {
        MPI_Comm_free(&m_close_comm);
      }
      m_close_comm = MPI_COMM_NULL;
      if (m_address != nullptr) ucp_worker_release_address(m_worker, m_address);
      m_address = nullptr;
      ucp_worker_destroy(m_worker);
      m_worker = nullptr;
      // Requests the worker took with it never call back: free their records.
      for (Pending* p : m_pending) delete p;
      m_pending.clear();
      m_abandoned = 0;
    }
    if (m_context != nullptr) {
      ucp_cleanup(m_context);
      m_context = nullptr;
    }
  }

  MPI_Comm m_comm;
  int m_rank = 0;
  int m_size = 0;
  ucp_context_h m_context = nullptr;
  ucp_worker_h m_worker = nullptr;
  ucp_address_t* m_address = nullptr;
  std::size_t m_address_length = 0;
  bool m_cuda_memory = false;
  MPI_Comm m_close_comm = MPI_COMM_NULL;
  std::vector<ucp_ep_h> m_eps;
  std::unordered_set<Pending*> m_pending;
  std::size_t m_abandoned = 0;
  std::vector<std::pair<Operation, std::exception_ptr>> m_completed;
};

}  // namespace

std::unique_ptr<P2pTransport> make_transport(MPI_Comm comm) {
  return std::make_unique<UcxTransport>(comm);
}

}  // namespace parla::mpi::ucx
