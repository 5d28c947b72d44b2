//! How a `ProcessID` of another node travels: as the target name `#ID@NODE`.
//!
//! The rules:
//! - A local process id keeps its wire form (`Target::Actor(id)`) and its speed; only a
//!   ProcessID that names another node (its `node` set, which Python does when it unpickles
//!   one from another node) is sent as this name, so frames need nothing new.
//! - The node is carried by its name, not an index agreed per link: a pid handed on from one
//!   node to a third still names the same node, with nothing to agree.
//! - A registered name always wins over this reading: the governor looks a target up by name
//!   first, so a name spelled like this that is registered here is that actor.

/// The target name for actor `id` of `node`.
pub fn pid_name(id: u64, node: &str) -> String {
    format!("#{id}@{node}")
}

/// The actor id and node a name of [`pid_name`]'s form names, or None for any other name.
pub fn parse_pid_name(name: &str) -> Option<(u64, &str)> {
    let (id, node) = name.strip_prefix('#')?.split_once('@')?;
    let id = id.parse().ok().filter(|_| id.bytes().all(|b| b.is_ascii_digit()))?;
    (!node.is_empty()).then_some((id, node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_name_reads_back_as_its_id_and_node() {
        assert_eq!(parse_pid_name(&pid_name(42, "b.1")), Some((42, "b.1")));
        assert_eq!(parse_pid_name(&pid_name(u64::MAX, "a")), Some((u64::MAX, "a")));
    }

    #[test]
    fn other_names_are_not_pids() {
        for name in ["counter", "#@a", "#12@", "12@a", "#+1@a", "#1x@a", "#99999999999999999999@a"] {
            assert_eq!(parse_pid_name(name), None, "{name}");
        }
    }
}
