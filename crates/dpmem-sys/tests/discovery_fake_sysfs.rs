//! Discovery against fake machines: sysfs and procfs trees built in a temporary directory,
//! so every figure the parser reports can be checked against what the "kernel" published.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use dpmem_sys::cpu_topology::{self, parse_cpu_list, CpuInfo};
use dpmem_sys::error::Errno;
use dpmem_sys::hugepage_info::{self, HugepageInfo, HugepageSizeInfo, NodeHugepages};
use dpmem_sys::hugepage_reserve::{clear_hugepages, hugepages_count, set_hugepages};
use dpmem_sys::mounts::{
    hugetlbfs_mount_containing, hugetlbfs_mounts, parse_hugetlbfs_mounts, parse_size_suffix,
    HugetlbfsMount,
};
use dpmem_sys::root::SysRoot;

const KIB: u64 = 1024;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A directory laid out like `/`, with just the sysfs and procfs files a test needs.
struct FakeMachine {
    dir: tempfile::TempDir,
}

impl FakeMachine {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    fn root(&self) -> SysRoot {
        SysRoot::at(self.dir.path())
    }

    fn host_path(&self, absolute: &str) -> PathBuf {
        self.dir.path().join(absolute.trim_start_matches('/'))
    }

    fn file(&self, absolute: &str, content: &str) -> &Self {
        let path = self.host_path(absolute);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        self
    }

    fn mkdir(&self, absolute: &str) -> &Self {
        std::fs::create_dir_all(self.host_path(absolute)).unwrap();
        self
    }

    fn read(&self, absolute: &str) -> String {
        std::fs::read_to_string(self.host_path(absolute)).unwrap()
    }

    fn meminfo(&self, hugepagesize_kib: Option<u64>) -> &Self {
        let mut text = String::from("MemTotal:       16303856 kB\nMemFree:         9117468 kB\n");
        if let Some(kib) = hugepagesize_kib {
            text.push_str("HugePages_Total:       0\n");
            text.push_str(&format!("Hugepagesize:    {kib:>8} kB\n"));
            text.push_str("Hugetlb:               0 kB\n");
        }
        self.file("/proc/meminfo", &text)
    }

    fn mounts(&self, hugetlbfs_lines: &[&str]) -> &Self {
        let mut text = String::from(
            "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n\
             proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n\
             tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0\n",
        );
        for line in hugetlbfs_lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("/dev/sda1 /boot ext4 rw,relatime 0 0\n");
        self.file("/proc/mounts", &text)
    }

    /// The global counters of one size, as `/sys/kernel/mm/hugepages/hugepages-<N>kB/` shows them.
    fn global_size(
        &self,
        page_size: u64,
        total: u64,
        free: u64,
        reserved: u64,
        surplus: u64,
    ) -> &Self {
        let dir = format!("/sys/kernel/mm/hugepages/hugepages-{}kB", page_size / KIB);
        self.file(&format!("{dir}/nr_hugepages"), &format!("{total}\n"))
            .file(&format!("{dir}/free_hugepages"), &format!("{free}\n"))
            .file(&format!("{dir}/resv_hugepages"), &format!("{reserved}\n"))
            .file(&format!("{dir}/surplus_hugepages"), &format!("{surplus}\n"))
            .file(&format!("{dir}/nr_overcommit_hugepages"), "0\n")
    }

    fn node_size(&self, node: u32, page_size: u64, total: u64, free: u64, surplus: u64) -> &Self {
        let dir = format!(
            "/sys/devices/system/node/node{node}/hugepages/hugepages-{}kB",
            page_size / KIB
        );
        self.file(&format!("{dir}/nr_hugepages"), &format!("{total}\n"))
            .file(&format!("{dir}/free_hugepages"), &format!("{free}\n"))
            .file(&format!("{dir}/surplus_hugepages"), &format!("{surplus}\n"))
    }

    /// Node directories plus the `online`/`possible` lists and the other entries a real
    /// `/sys/devices/system/node` holds, so the parser must pick the `node<N>` ones.
    fn nodes(&self, online: &str, nodes: &[u32]) -> &Self {
        self.file("/sys/devices/system/node/online", &format!("{online}\n"))
            .file("/sys/devices/system/node/possible", &format!("{online}\n"))
            .file(
                "/sys/devices/system/node/has_memory",
                &format!("{online}\n"),
            )
            .mkdir("/sys/devices/system/node/power");
        for node in nodes {
            self.mkdir(&format!("/sys/devices/system/node/node{node}"));
        }
        self
    }
}

/// Two NUMA nodes; 2 MiB pages split over both, 1 GiB pages on node 0; two mounts.
fn two_node_machine() -> FakeMachine {
    let m = FakeMachine::new();
    m.meminfo(Some(2048))
        .mounts(&[
            "nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0",
            r"hugetlbfs /mnt/huge\0401G hugetlbfs rw,relatime,pagesize=1G 0 0",
        ])
        .nodes("0-1", &[0, 1])
        .global_size(2 * MIB, 1024, 1000, 8, 2)
        .node_size(0, 2 * MIB, 600, 590, 2)
        .node_size(1, 2 * MIB, 424, 410, 0)
        .global_size(GIB, 4, 3, 1, 0)
        .node_size(0, GIB, 4, 3, 0)
        .node_size(1, GIB, 0, 0, 0);
    m
}

#[test]
fn two_numa_nodes_with_2m_and_1g_pages() {
    let m = two_node_machine();
    let info = hugepage_info::discover(&m.root()).unwrap();
    let expected = HugepageInfo {
        default_page_size: Some(2 * MIB),
        sizes: vec![
            HugepageSizeInfo {
                page_size: 2 * MIB,
                total: 1024,
                free: 1000,
                reserved: 8,
                surplus: 2,
                per_node: vec![
                    NodeHugepages {
                        node: 0,
                        total: 600,
                        free: 590,
                        surplus: 2,
                    },
                    NodeHugepages {
                        node: 1,
                        total: 424,
                        free: 410,
                        surplus: 0,
                    },
                ],
                mounts: vec![PathBuf::from("/dev/hugepages")],
            },
            HugepageSizeInfo {
                page_size: GIB,
                total: 4,
                free: 3,
                reserved: 1,
                surplus: 0,
                per_node: vec![
                    NodeHugepages {
                        node: 0,
                        total: 4,
                        free: 3,
                        surplus: 0,
                    },
                    NodeHugepages {
                        node: 1,
                        total: 0,
                        free: 0,
                        surplus: 0,
                    },
                ],
                mounts: vec![PathBuf::from("/mnt/huge 1G")],
            },
        ],
        numa_nodes: vec![0, 1],
    };
    assert_eq!(info, expected);

    assert_eq!(info.size(2 * MIB).unwrap().total, 1024);
    assert!(info.size(16 * MIB).is_none());
    assert_eq!(info.free_on_node(2 * MIB, 0), 590);
    assert_eq!(info.free_on_node(2 * MIB, 1), 410);
    assert_eq!(info.free_on_node(GIB, 0), 3);
    assert_eq!(info.free_on_node(GIB, 1), 0);
    assert_eq!(info.free_on_node(GIB, 7), 0, "unknown node has nothing");
    assert_eq!(
        info.free_on_node(16 * MIB, 0),
        0,
        "unknown size has nothing"
    );
    assert_eq!(info.free_bytes(), 1000 * 2 * MIB + 3 * GIB);
}

#[test]
fn one_gib_pages_only_with_default_size_mount() {
    let m = FakeMachine::new();
    m.meminfo(Some(1024 * 1024))
        // No pagesize= option: the mount serves the default size, 1 GiB here.
        .mounts(&["none /dev/hugepages1G hugetlbfs rw,relatime 0 0"])
        .nodes("0", &[0])
        .global_size(GIB, 8, 8, 0, 0)
        .node_size(0, GIB, 8, 8, 0);
    let info = hugepage_info::discover(&m.root()).unwrap();
    assert_eq!(
        info,
        HugepageInfo {
            default_page_size: Some(GIB),
            sizes: vec![HugepageSizeInfo {
                page_size: GIB,
                total: 8,
                free: 8,
                reserved: 0,
                surplus: 0,
                per_node: vec![NodeHugepages {
                    node: 0,
                    total: 8,
                    free: 8,
                    surplus: 0
                }],
                mounts: vec![PathBuf::from("/dev/hugepages1G")],
            }],
            numa_nodes: vec![0],
        }
    );
    assert_eq!(info.free_on_node(2 * MIB, 0), 0);
    assert_eq!(info.free_on_node(GIB, 0), 8);
}

#[test]
fn hugepages_without_any_hugetlbfs_mount() {
    let m = FakeMachine::new();
    m.meminfo(Some(2048))
        .mounts(&[])
        .nodes("0", &[0])
        .global_size(2 * MIB, 16, 16, 0, 0)
        .node_size(0, 2 * MIB, 16, 16, 0);
    let info = hugepage_info::discover(&m.root()).unwrap();
    assert_eq!(info.sizes.len(), 1);
    let size = &info.sizes[0];
    assert_eq!((size.page_size, size.total, size.free), (2 * MIB, 16, 16));
    assert!(size.mounts.is_empty());
    assert!(hugetlbfs_mounts(&m.root()).unwrap().is_empty());
    assert_eq!(
        hugetlbfs_mount_containing(&m.root(), Path::new("/dev/hugepages")).unwrap(),
        None
    );
}

#[test]
fn machine_without_hugepage_support() {
    let m = FakeMachine::new();
    m.meminfo(None).mounts(&[]).nodes("0", &[0]);
    let root = m.root();
    let info = hugepage_info::discover(&root).unwrap();
    assert_eq!(
        info,
        HugepageInfo {
            default_page_size: None,
            sizes: vec![],
            numa_nodes: vec![0]
        }
    );
    assert_eq!(info.free_on_node(2 * MIB, 0), 0);
    assert_eq!(info.free_bytes(), 0);
    assert_eq!(hugepage_info::page_sizes(&root).unwrap(), Vec::<u64>::new());
    // Clearing nothing succeeds; reserving reports the missing size as ENOENT.
    clear_hugepages(&root).unwrap();
    assert_eq!(
        set_hugepages(&root, 2 * MIB, None, 1).unwrap_err().errno,
        Errno::NOENT
    );
}

#[test]
fn non_numa_machine_puts_everything_on_node_0() {
    let m = FakeMachine::new();
    // No /sys/devices/system/node at all, as on a kernel built without CONFIG_NUMA.
    m.meminfo(Some(2048))
        .mounts(&["nodev /dev/hugepages hugetlbfs rw,relatime 0 0"])
        .global_size(2 * MIB, 128, 100, 4, 0);
    let root = m.root();
    assert_eq!(hugepage_info::numa_nodes(&root).unwrap(), vec![0]);
    let info = hugepage_info::discover(&root).unwrap();
    assert_eq!(info.numa_nodes, vec![0]);
    let size = info.size(2 * MIB).unwrap();
    assert!(size.per_node.is_empty());
    assert_eq!(size.mounts, vec![PathBuf::from("/dev/hugepages")]);
    assert_eq!(size.reserved, 4);
    assert_eq!(
        size.on_node(0),
        NodeHugepages {
            node: 0,
            total: 128,
            free: 100,
            surplus: 0
        }
    );
    assert_eq!(info.free_on_node(2 * MIB, 0), 100);
    assert_eq!(info.free_on_node(2 * MIB, 1), 0);
}

#[test]
fn numa_node_list_sources() {
    // `online` with a gap.
    let m = FakeMachine::new();
    m.nodes("0-1,3", &[0, 1, 3]);
    assert_eq!(hugepage_info::numa_nodes(&m.root()).unwrap(), vec![0, 1, 3]);

    // No `online`: the node<N> directory names, ignoring other entries.
    let m = FakeMachine::new();
    m.mkdir("/sys/devices/system/node/node2")
        .mkdir("/sys/devices/system/node/node0")
        .mkdir("/sys/devices/system/node/power")
        .file("/sys/devices/system/node/has_cpu", "0,2\n");
    assert_eq!(hugepage_info::numa_nodes(&m.root()).unwrap(), vec![0, 2]);

    // Node directory present but empty: still one node.
    let m = FakeMachine::new();
    m.mkdir("/sys/devices/system/node");
    assert_eq!(hugepage_info::numa_nodes(&m.root()).unwrap(), vec![0]);

    // A malformed list is an error, not a guess.
    let m = FakeMachine::new();
    m.file("/sys/devices/system/node/online", "0-\n");
    assert_eq!(
        hugepage_info::numa_nodes(&m.root()).unwrap_err().errno,
        Errno::INVAL
    );
}

#[test]
fn malformed_counter_is_einval() {
    let m = FakeMachine::new();
    m.meminfo(Some(2048))
        .mounts(&[])
        .global_size(2 * MIB, 1, 1, 0, 0);
    m.file(
        "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
        "lots\n",
    );
    let err = hugepage_info::discover(&m.root()).unwrap_err();
    assert_eq!(err.errno, Errno::INVAL);
    assert!(err.target.ends_with("free_hugepages"), "{err}");
}

#[test]
fn default_page_size_from_meminfo() {
    let m = FakeMachine::new();
    m.meminfo(Some(2048));
    assert_eq!(
        dpmem_sys::meminfo::default_page_size(&m.root()).unwrap(),
        Some(2 * MIB)
    );
    let m = FakeMachine::new();
    m.meminfo(None);
    assert_eq!(
        dpmem_sys::meminfo::default_page_size(&m.root()).unwrap(),
        None
    );
    let m = FakeMachine::new();
    assert_eq!(
        dpmem_sys::meminfo::default_page_size(&m.root()).unwrap(),
        None,
        "no /proc/meminfo"
    );
}

// ---- mounts ----

#[test]
fn mount_lines_are_parsed_with_escapes_and_page_sizes() {
    let text = "\
proc /proc proc rw 0 0
nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0
nodev /mnt/huge\\040pages hugetlbfs rw,relatime,pagesize=1024M 0 0
nodev /mnt/tab\\011and\\134slash hugetlbfs rw,pagesize=1G,relatime 0 0
nodev /mnt/default hugetlbfs rw,relatime,mode=1770,gid=1000 0 0
nodev /mnt/kib hugetlbfs rw,pagesize=2048k 0 0
hugetlbfs /not/hugetlbfs tmpfs rw,pagesize=2M 0 0
nodev /mnt/bad hugetlbfs rw,pagesize=huge 0 0
truncated-line
";
    let mounts = parse_hugetlbfs_mounts(text, Some(2 * MIB));
    let expect = |p: &str, s: u64| HugetlbfsMount {
        mount_point: PathBuf::from(p),
        page_size: s,
    };
    assert_eq!(
        mounts,
        vec![
            expect("/dev/hugepages", 2 * MIB),
            expect("/mnt/huge pages", GIB),
            expect("/mnt/tab\tand\\slash", GIB),
            expect("/mnt/default", 2 * MIB),
            expect("/mnt/kib", 2 * MIB),
        ]
    );

    // Without a default size, a mount lacking pagesize= cannot be used and is left out.
    let mounts = parse_hugetlbfs_mounts(text, None);
    assert_eq!(mounts.len(), 4);
    assert!(mounts
        .iter()
        .all(|m| m.mount_point != Path::new("/mnt/default")));
}

#[test]
fn hugetlbfs_mounts_reads_proc_mounts_and_meminfo() {
    let m = FakeMachine::new();
    m.meminfo(Some(1024 * 1024)).mounts(&[
        "nodev /dev/hugepages hugetlbfs rw 0 0",
        "nodev /huge2m hugetlbfs rw,pagesize=2M 0 0",
    ]);
    assert_eq!(
        hugetlbfs_mounts(&m.root()).unwrap(),
        vec![
            HugetlbfsMount {
                mount_point: "/dev/hugepages".into(),
                page_size: GIB
            },
            HugetlbfsMount {
                mount_point: "/huge2m".into(),
                page_size: 2 * MIB
            },
        ]
    );
    let empty = FakeMachine::new();
    assert_eq!(
        hugetlbfs_mounts(&empty.root()).unwrap_err().errno,
        Errno::NOENT
    );
}

#[test]
fn size_suffixes() {
    assert_eq!(parse_size_suffix("2M"), Some(2 * MIB));
    assert_eq!(parse_size_suffix("2m"), Some(2 * MIB));
    assert_eq!(parse_size_suffix("1G"), Some(GIB));
    assert_eq!(parse_size_suffix("1024M"), Some(GIB));
    assert_eq!(parse_size_suffix("2048k"), Some(2 * MIB));
    assert_eq!(parse_size_suffix("2048K"), Some(2 * MIB));
    assert_eq!(parse_size_suffix("4096"), Some(4096));
    assert_eq!(parse_size_suffix("1T"), Some(1 << 40));
    assert_eq!(parse_size_suffix("2MB"), Some(2 * MIB));
    assert_eq!(parse_size_suffix("2MiB"), Some(2 * MIB));
    assert_eq!(parse_size_suffix(" 16G "), Some(16 * GIB));
    // C notation, as DPDK's strtoull(.., 0) reads it.
    assert_eq!(parse_size_suffix("0x10"), Some(16));
    assert_eq!(parse_size_suffix("010M"), Some(8 * MIB));
    for bad in [
        "",
        "M",
        "2X",
        "-2M",
        "2 M",
        "2MM",
        "08",
        "2B",
        "99999999999999G",
    ] {
        assert_eq!(parse_size_suffix(bad), None, "{bad:?}");
    }
}

fn mount_lookup_machine() -> FakeMachine {
    let m = FakeMachine::new();
    m.meminfo(Some(2048)).mounts(&[
        "nodev /dev/hugepages hugetlbfs rw 0 0",
        "nodev /mnt/huge hugetlbfs rw,pagesize=2M 0 0",
        "nodev /mnt/huge/inner hugetlbfs rw,pagesize=1G 0 0",
        "nodev /stacked hugetlbfs rw,pagesize=2M 0 0",
        "nodev /stacked hugetlbfs rw,pagesize=1G 0 0",
    ]);
    m
}

#[test]
fn mount_containing_picks_the_nearest_mount() {
    let m = mount_lookup_machine();
    let root = m.root();
    let lookup = |p: &str| {
        hugetlbfs_mount_containing(&root, Path::new(p))
            .unwrap()
            .map(|m| (m.mount_point, m.page_size))
    };
    let hit = |p: &str, s: u64| Some((PathBuf::from(p), s));

    assert_eq!(
        lookup("/dev/hugepages"),
        hit("/dev/hugepages", 2 * MIB),
        "mount point itself"
    );
    assert_eq!(
        lookup("/dev/hugepages/"),
        hit("/dev/hugepages", 2 * MIB),
        "trailing slash"
    );
    assert_eq!(
        lookup("/dev/hugepages/app/run1"),
        hit("/dev/hugepages", 2 * MIB),
        "subdirectory"
    );
    assert_eq!(lookup("/dev/hugepages2"), None, "sibling sharing a prefix");
    assert_eq!(lookup("/dev"), None, "parent of a mount");
    assert_eq!(lookup("/tmp"), None);
    assert_eq!(
        lookup("/mnt/huge/inner/x"),
        hit("/mnt/huge/inner", GIB),
        "longest match wins"
    );
    assert_eq!(lookup("/mnt/huge/other"), hit("/mnt/huge", 2 * MIB));
    assert_eq!(
        lookup("/mnt/huge/inner/../x"),
        hit("/mnt/huge", 2 * MIB),
        "lexical .. under a fake root"
    );
    assert_eq!(lookup("/mnt/huge/./inner"), hit("/mnt/huge/inner", GIB));
    assert_eq!(
        lookup("/stacked/f"),
        hit("/stacked", GIB),
        "the mount listed last is on top"
    );
}

// ---- CPU list parser and topology ----

#[test]
fn cpu_list_parser_accepts_kernel_syntax() {
    let set = |v: &[u32]| {
        v.iter()
            .copied()
            .collect::<std::collections::BTreeSet<u32>>()
    };
    assert_eq!(parse_cpu_list("0-3,5"), Some(set(&[0, 1, 2, 3, 5])));
    assert_eq!(parse_cpu_list("0\n"), Some(set(&[0])));
    assert_eq!(parse_cpu_list("7"), Some(set(&[7])));
    assert_eq!(parse_cpu_list("2-2"), Some(set(&[2])));
    assert_eq!(parse_cpu_list("8-9,0-1"), Some(set(&[0, 1, 8, 9])));
    assert_eq!(parse_cpu_list("1,1,1-2"), Some(set(&[1, 2])));
    assert_eq!(
        parse_cpu_list("\n"),
        Some(set(&[])),
        "a node without CPUs prints an empty list"
    );
    for bad in [
        "1-",
        "1,",
        "3-1",
        "a",
        ",1",
        "-1",
        "1--2",
        "1-2-3",
        "1, 2",
        "+1",
        "0-1,,3",
        "4294967296",
    ] {
        assert_eq!(parse_cpu_list(bad), None, "{bad:?}");
    }
}

/// Eight CPUs on two packages; node membership published as `cpuN/nodeM` links when
/// `node_links`, else only through `nodeM/cpulist`.
fn two_socket_cpus(node_links: bool) -> FakeMachine {
    let m = FakeMachine::new();
    m.file("/sys/devices/system/cpu/present", "0-7\n")
        .file("/sys/devices/system/cpu/possible", "0-15\n")
        .file("/sys/devices/system/cpu/online", "0-7\n")
        .mkdir("/sys/devices/system/cpu/cpufreq")
        .nodes("0-1", &[0, 1])
        .file("/sys/devices/system/node/node0/cpulist", "0-3\n")
        .file("/sys/devices/system/node/node1/cpulist", "4-7\n");
    for cpu in 0..8u32 {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}");
        // Two cores per package, two hyperthreads per core: cpu0/cpu2 share core 0, ...
        m.file(
            &format!("{dir}/topology/core_id"),
            &format!("{}\n", cpu % 2),
        )
        .file(
            &format!("{dir}/topology/physical_package_id"),
            &format!("{}\n", cpu / 4),
        );
        if node_links {
            symlink(
                format!("../../node/node{}", cpu / 4),
                m.host_path(&format!("{dir}/node{}", cpu / 4)),
            )
            .unwrap();
        }
    }
    m
}

fn expected_two_socket() -> Vec<CpuInfo> {
    (0..8)
        .map(|cpu| CpuInfo {
            cpu,
            core_id: cpu % 2,
            package_id: cpu / 4,
            node: cpu / 4,
        })
        .collect()
}

#[test]
fn two_socket_topology_from_node_links() {
    let m = two_socket_cpus(true);
    let topo = cpu_topology::discover(&m.root()).unwrap();
    assert_eq!(topo.cpus, expected_two_socket());
    assert_eq!(topo.socket_ids(), vec![0, 1]);
    assert_eq!(topo.socket_count(), 2);
    assert_eq!(
        topo.cpu(5),
        Some(&CpuInfo {
            cpu: 5,
            core_id: 1,
            package_id: 1,
            node: 1
        })
    );
    assert!(topo.contains(0) && topo.contains(7));
    assert!(!topo.contains(8), "possible but not present");
}

#[test]
fn two_socket_topology_from_node_cpulists() {
    let m = two_socket_cpus(false);
    let topo = cpu_topology::discover(&m.root()).unwrap();
    assert_eq!(topo.cpus, expected_two_socket());
    assert_eq!(topo.socket_ids(), vec![0, 1]);
}

#[test]
fn topology_edge_cases() {
    let m = FakeMachine::new();
    // cpu3 is present but has no topology (offline on an older kernel): not detected.
    // cpu1 reports package -1 (firmware silent): package 0. No node information: node 0.
    m.file("/sys/devices/system/cpu/present", "0-3\n");
    for cpu in 0..3u32 {
        m.file(
            &format!("/sys/devices/system/cpu/cpu{cpu}/topology/core_id"),
            &format!("{cpu}\n"),
        )
        .file(
            &format!("/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id"),
            "0\n",
        );
    }
    m.file(
        "/sys/devices/system/cpu/cpu1/topology/physical_package_id",
        "-1\n",
    );
    m.mkdir("/sys/devices/system/cpu/cpu3");
    let topo = cpu_topology::discover(&m.root()).unwrap();
    assert_eq!(
        topo.cpus,
        vec![
            CpuInfo {
                cpu: 0,
                core_id: 0,
                package_id: 0,
                node: 0
            },
            CpuInfo {
                cpu: 1,
                core_id: 1,
                package_id: 0,
                node: 0
            },
            CpuInfo {
                cpu: 2,
                core_id: 2,
                package_id: 0,
                node: 0
            },
        ]
    );
    assert_eq!(topo.socket_ids(), vec![0]);
    assert_eq!(topo.socket_count(), 1);

    // Without present/possible lists, the cpuN directories are the candidates.
    let m = FakeMachine::new();
    for cpu in [0u32, 2, 10] {
        m.file(
            &format!("/sys/devices/system/cpu/cpu{cpu}/topology/core_id"),
            "0\n",
        );
    }
    m.mkdir("/sys/devices/system/cpu/cpuidle");
    let cpus: Vec<u32> = cpu_topology::discover(&m.root())
        .unwrap()
        .cpus
        .iter()
        .map(|c| c.cpu)
        .collect();
    assert_eq!(cpus, vec![0, 2, 10]);

    // A malformed present list is reported.
    let m = FakeMachine::new();
    m.file("/sys/devices/system/cpu/present", "0-3,\n");
    assert_eq!(
        cpu_topology::discover(&m.root()).unwrap_err().errno,
        Errno::INVAL
    );

    // No sysfs at all: no CPUs, no error.
    let m = FakeMachine::new();
    assert!(cpu_topology::discover(&m.root()).unwrap().cpus.is_empty());
}

// ---- reserving and clearing ----

#[test]
fn set_hugepages_writes_global_and_node_files() {
    let m = two_node_machine();
    let root = m.root();
    set_hugepages(&root, 2 * MIB, None, 2048).unwrap();
    assert_eq!(
        m.read("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
        "2048"
    );
    assert_eq!(hugepages_count(&root, 2 * MIB, None).unwrap(), 2048);
    // The node files are untouched by a global write.
    assert_eq!(
        m.read("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"),
        "600\n"
    );

    set_hugepages(&root, GIB, Some(1), 2).unwrap();
    assert_eq!(
        m.read("/sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages"),
        "2"
    );
    assert_eq!(hugepages_count(&root, GIB, Some(1)).unwrap(), 2);
    assert_eq!(
        m.read("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"),
        "4\n"
    );

    // Unsupported size, unknown node, nonsense size.
    let err = set_hugepages(&root, 16 * MIB, None, 1).unwrap_err();
    assert_eq!(err.errno, Errno::NOENT);
    assert!(err.target.contains("hugepages-16384kB"), "{err}");
    assert_eq!(
        set_hugepages(&root, 2 * MIB, Some(5), 1).unwrap_err().errno,
        Errno::NOENT
    );
    assert_eq!(
        set_hugepages(&root, 1000, None, 1).unwrap_err().errno,
        Errno::INVAL
    );
    assert_eq!(
        set_hugepages(&root, 0, None, 1).unwrap_err().errno,
        Errno::INVAL
    );
    // Nothing was created by the failed writes.
    assert!(!m
        .host_path("/sys/kernel/mm/hugepages/hugepages-16384kB")
        .exists());
}

#[test]
fn clear_hugepages_zeroes_every_size_and_node() {
    let m = two_node_machine();
    clear_hugepages(&m.root()).unwrap();
    for kib in [2048, 1048576] {
        assert_eq!(
            m.read(&format!(
                "/sys/kernel/mm/hugepages/hugepages-{kib}kB/nr_hugepages"
            )),
            "0"
        );
        for node in [0, 1] {
            let path = format!(
                "/sys/devices/system/node/node{node}/hugepages/hugepages-{kib}kB/nr_hugepages"
            );
            assert_eq!(m.read(&path), "0", "{path}");
        }
    }
    // Only nr_hugepages is written; the read-only counters are left alone.
    assert_eq!(
        m.read("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"),
        "1000\n"
    );

    // Non-NUMA machine: only the global files exist and are cleared.
    let m = FakeMachine::new();
    m.global_size(2 * MIB, 64, 64, 0, 0)
        .global_size(GIB, 1, 1, 0, 0);
    clear_hugepages(&m.root()).unwrap();
    assert_eq!(
        m.read("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
        "0"
    );
    assert_eq!(
        m.read("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"),
        "0"
    );
}

#[test]
fn set_hugepages_without_permission_is_eacces() {
    use std::os::unix::fs::PermissionsExt;
    if rustix::process::geteuid().is_root() {
        eprintln!("skipped: running as root, which writes read-only files anyway");
        return;
    }
    let m = two_node_machine();
    let path = m.host_path("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = set_hugepages(&m.root(), 2 * MIB, None, 1).unwrap_err();
    assert!(matches!(err.errno, Errno::ACCESS | Errno::PERM), "{err}");
}
