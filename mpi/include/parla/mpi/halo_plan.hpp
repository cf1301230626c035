#pragma once
/// HaloPlan: what one halo exchange of a DistArray does, built once per array and reused.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <parla/data_block.hpp>

#include "parla/mpi/box.hpp"

namespace parla::mpi {

/// How the ghost cells of one (partition, direction) are filled.
enum class HaloRoute : unsigned char {
  /// A partition on the same rank and the same device: one copy task reads the source
  /// partition's owned cells and writes the ghost cells (no buffer).
  local_copy,
  /// A partition on the same rank, another device: a pack task on the source's device fills
  /// a buffer, the runtime moves it device-to-device, an unpack task on this partition's
  /// device writes the ghost cells.
  local_transfer,
  /// A partition of another rank: (pack →) send there, receive here (→ unpack). Contiguous
  /// regions of host partitions are sent from / received into the block itself.
  remote,
};

/// "local_copy", "local_transfer", "remote".
const char* to_string(HaloRoute route) noexcept;

/// One incoming halo of one local partition: the ghost cells on the side `direction` of it
/// (components -1, 0, +1 per axis; a face has one non-zero component, an edge two, a corner
/// three) and where they come from. Boxes are in owned-relative coordinates of their own
/// partition (owned cells are 0 <= i[d] < extent[d]; ghost cells lie outside).
struct HaloRecv {
  int partition = 0;                        ///< local index of the receiving partition
  std::array<int, k_max_dims> direction{};  ///< side of the receiving partition
  HaloRoute route = HaloRoute::local_copy;
  int peer_rank = 0;                        ///< rank owning the source partition
  int peer_global = 0;                      ///< global index of the source partition
  int peer_local = 0;                       ///< its local index on peer_rank
  Box recv_box;                             ///< ghost cells written here
  Box send_box;                             ///< owned cells of the source partition read
  int tag = 0;                              ///< Comm tag (remote only)
  bool direct = false;                      ///< remote: received straight into the block
  DataBlock buffer;                         ///< receive buffer (remote, not direct) or the
                                            ///< source's pack buffer (local_transfer)
};

/// One outgoing halo of one local partition to a partition of another rank.
struct HaloSend {
  int partition = 0;                        ///< local index of the sending partition
  std::array<int, k_max_dims> direction{};  ///< direction of travel (= -direction at receiver)
  int peer_rank = 0;
  int peer_global = 0;                      ///< global index of the receiving partition
  Box send_box;                             ///< owned cells read (sender's coordinates)
  int tag = 0;
  bool direct = false;                      ///< sent straight from the block (contiguous)
  DataBlock buffer;                         ///< pack buffer (when not direct)
};

namespace detail {
struct DistArrayState;
}

/// The halo plan of one DistArray: for every local partition and every direction of the
/// stencil (star: the 2·ndim faces; box: all 3^ndim − 1 faces, edges and corners, exchanged
/// directly with the diagonal neighbour), the regions, the peer, the buffers (allocated once)
/// and a deterministic tag. Built on the first `exchange_halos()` and reused; read-only.
///
/// Messages between a pair of ranks are spawned on both sides in one canonical order
/// (receiving partition, then direction), so they match whatever the tags are; the tag
/// (array id, direction, receiving partition, folded into Comm::max_tag()) only keeps
/// traces readable and unrelated arrays apart.
class HaloPlan {
 public:
  /// Every incoming halo of this rank's partitions, in the canonical order.
  [[nodiscard]] const std::vector<HaloRecv>& recvs() const noexcept { return m_recvs; }
  /// Every outgoing message to other ranks, in the canonical order of the receiver.
  [[nodiscard]] const std::vector<HaloSend>& sends() const noexcept { return m_sends; }
  /// Bytes moved by one exchange on this rank: sent to other ranks, and copied within it.
  [[nodiscard]] std::size_t bytes_sent() const noexcept { return m_bytes_sent; }
  [[nodiscard]] std::size_t bytes_local() const noexcept { return m_bytes_local; }
  /// Number of exchanges executed with this plan.
  [[nodiscard]] std::uint64_t executions() const noexcept { return m_executions; }
  /// One line per halo, for debugging.
  [[nodiscard]] std::string describe() const;

 private:
  friend struct detail::DistArrayState;
  std::vector<HaloRecv> m_recvs;
  std::vector<HaloSend> m_sends;
  std::size_t m_bytes_sent = 0;
  std::size_t m_bytes_local = 0;
  std::uint64_t m_executions = 0;
};

}  // namespace parla::mpi
