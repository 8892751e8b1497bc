// The libgit2 layer of the git backend: ids, trees and the repository wrapper. Each C call goes
// raw call -> check -> Swift method; the backend (GitStore) sees only these types.
import CGit2
import Foundation

/// The last libgit2 error as one line.
func lastGitError() -> String {
  guard let e = tsuku_git_error_last(), let m = e.pointee.message else { return "unknown libgit2 error" }
  return String(cString: m).split(whereSeparator: \.isNewline).joined(separator: " ")
}

func gitCheck(_ rc: Int32, _ what: @autoclosure () -> String) throws {
  if rc >= 0 { return }
  throw TsukuError(.other, "\(what()): \(lastGitError())")
}

func hex(_ oid: git_oid) -> String {
  withUnsafePointer(to: oid) { String(cString: tsuku_git_oid_tostr_s($0)) }
}

/// A git object id (20 bytes), as the backend holds it without naming libgit2.
typealias GitOID = git_oid

/// The 20 raw bytes of an id, and back.
func oidBytes(_ oid: git_oid) -> [UInt8] {
  withUnsafePointer(to: oid) { Array(UnsafeBufferPointer(start: tsuku_git_oid_bytes($0), count: Int(GIT_OID_RAWSZ))) }
}

func gitOID(_ bytes: [UInt8]) -> git_oid {
  var oid = git_oid()
  tsuku_git_oid_set(&oid, bytes)
  return oid
}

func hexBytes(_ bytes: [UInt8]) -> String { hex(gitOID(bytes)) }

func same(_ a: git_oid, _ b: git_oid) -> Bool {
  withUnsafePointer(to: a) { pa in withUnsafePointer(to: b) { tsuku_git_oid_equal(pa, $0) != 0 } }
}

/// A loaded git tree, freed with its owner.
final class GitTree {
  let pointer: OpaquePointer
  let oid: git_oid
  private let owner: GitRepository  // freed after its trees
  init(_ pointer: OpaquePointer, owner: GitRepository) {
    self.pointer = pointer
    self.oid = tsuku_git_tree_id(pointer).pointee
    self.owner = owner
  }
  deinit { tsuku_git_tree_free(pointer) }
}

/// The resolved commit and its tree; both nil while the branch is unborn.
struct GitTip {
  var commit: git_oid?
  var tree: GitTree?
  var time: Int64
}

/// What a commit does at one path: put a blob or a folder there, or take it out.
enum GitTreeEdit {
  case blob(git_oid)
  case tree(git_oid)
  case remove
}

/// A tree entry, copied out of libgit2.
struct GitTreeEntry {
  var name: String
  var oid: git_oid
  var type: git_object_t
  init(_ e: OpaquePointer) {
    (name, oid, type) = (String(cString: tsuku_git_tree_entry_name(e)), tsuku_git_tree_entry_id(e).pointee, tsuku_git_tree_entry_type(e))
  }
  var isBlob: Bool { type == GIT_OBJECT_BLOB }
  var isTree: Bool { type == GIT_OBJECT_TREE }
}

/// One open repository and its object database. Not thread-safe: only used under the lock.
final class GitRepository {
  /// libgit2's global state, set up once per process. Its object cache is capped at 1 MB:
  /// only objects under 4 KB are cached (small trees and commits), and the default cap,
  /// 256 MB, only fills with the thousands a history walk reads once each (their parsed
  /// form is several times the size the cap counts). Packs are mapped 2 MB at a time, at
  /// most 8 MB at once: the default maps a whole pack, every page of which a walk touches.
  /// So a walk's memory does not grow with the repository.
  /// libgit2 itself is loaded here, on first use (see the CGit2 shim): nil, or why it could not be.
  static let libraryUnavailable: String? = {
    if let why = tsuku_git2_load() { return String(cString: why) }
    _ = tsuku_git_libgit2_init()
    _ = tsuku_git_set_cache_max_size(1 << 20)
    _ = tsuku_git_set_mwindow(2 << 20, 8 << 20)
    return nil
  }()

  /// Loads and sets up libgit2 once; throws (unavailable) when it cannot be loaded.
  static func requireLibrary() throws {
    if let why = libraryUnavailable { throw TsukuError(.unavailable, why) }
  }

  let repo: OpaquePointer
  let odb: OpaquePointer
  let path: String

  init(path: String) throws {
    try Self.requireLibrary()
    self.path = path
    var r: OpaquePointer?
    let flags = GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue
    try gitCheck(tsuku_git_repository_open_ext(&r, path, flags, nil), "cannot open git repository '\(path)'")
    var o: OpaquePointer?
    let rc = tsuku_git_repository_odb(&o, r)
    if rc < 0 { tsuku_git_repository_free(r) }
    try gitCheck(rc, "cannot open the objects of git repository '\(path)'")
    (repo, odb) = (r!, o!)
  }

  deinit {
    tsuku_git_odb_free(odb)
    tsuku_git_repository_free(repo)
  }

  /// Creates an empty repository (no commits) whose HEAD names `branch`.
  static func create(at path: String, bare: Bool, branch: String) throws {
    try requireLibrary()
    var opts = git_repository_init_options()
    let version = UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)
    try gitCheck(tsuku_git_repository_init_options_init(&opts, version), "cannot create git repository '\(path)'")
    opts.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue | (bare ? GIT_REPOSITORY_INIT_BARE.rawValue : 0)
    var repo: OpaquePointer?
    try branch.withCString { head in
      opts.initial_head = head
      try gitCheck(tsuku_git_repository_init_ext(&repo, path, &opts), "cannot create git repository '\(path)'")
    }
    tsuku_git_repository_free(repo)
  }

  /// The commit `ref` names (nil: unborn) and the branch it is, if it is one.
  func resolve(_ ref: String?) throws -> (git_oid?, String?) {
    guard let ref else {
      var head: OpaquePointer?
      try gitCheck(tsuku_git_reference_lookup(&head, repo, "HEAD"), "cannot read HEAD of '\(path)'")
      defer { tsuku_git_reference_free(head) }
      if tsuku_git_reference_type(head) == GIT_REFERENCE_SYMBOLIC, let target = tsuku_git_reference_symbolic_target(head) {
        let name = String(cString: target)
        return (try branchTip(name).0, name.hasPrefix("refs/heads/") ? name : nil)
      }
      return (try peelToCommit("HEAD"), nil)
    }
    let full = ref.hasPrefix("refs/heads/") ? ref : "refs/heads/" + ref
    var valid: Int32 = 0
    try gitCheck(tsuku_git_reference_name_is_valid(&valid, full), "cannot check ref '\(ref)'")
    if valid == 1 {
      var oid = git_oid()
      if tsuku_git_reference_name_to_id(&oid, repo, full) == 0 { return (try peelToCommit(full), full) }
    }
    var obj: OpaquePointer?
    let rc = tsuku_git_revparse_single(&obj, repo, ref)
    tsuku_git_object_free(obj)
    if rc == 0 { return (try peelToCommit(ref), nil) }
    if valid == 1 && tsuku_git_repository_head_unborn(repo) == 1 { return (nil, full) }
    if rc == GIT_ENOTFOUND.rawValue || rc == GIT_EINVALIDSPEC.rawValue {
      throw TsukuError(.notFound, "ref '\(ref)' not found in '\(path)'")
    }
    try gitCheck(rc, "cannot resolve ref '\(ref)' in '\(path)'")
    return (nil, nil)
  }

  private func peelToCommit(_ spec: String) throws -> git_oid {
    var obj: OpaquePointer?
    try gitCheck(tsuku_git_revparse_single(&obj, repo, spec), "cannot resolve ref '\(spec)' in '\(path)'")
    defer { tsuku_git_object_free(obj) }
    var commit: OpaquePointer?
    try gitCheck(tsuku_git_object_peel(&commit, obj, GIT_OBJECT_COMMIT), "ref '\(spec)' in '\(path)' does not name a commit")
    defer { tsuku_git_object_free(commit) }
    return tsuku_git_object_id(commit).pointee
  }

  /// The current tip of a branch, read now (nil for an unborn branch), and its tree.
  func branchTip(_ branch: String) throws -> (git_oid?, GitTree?) {
    var oid = git_oid()
    let rc = tsuku_git_reference_name_to_id(&oid, repo, branch)
    if rc == GIT_ENOTFOUND.rawValue { return (nil, nil) }
    try gitCheck(rc, "cannot read branch '\(branch)' in '\(path)'")
    return (oid, try tip(oid).tree)
  }

  func tip(_ commit: git_oid?) throws -> GitTip {
    guard var oid = commit else { return GitTip(commit: nil, tree: nil, time: 0) }
    var c: OpaquePointer?
    try gitCheck(tsuku_git_commit_lookup(&c, repo, &oid), "cannot read commit '\(hex(oid))' in '\(path)'")
    defer { tsuku_git_commit_free(c) }
    var t: OpaquePointer?
    try gitCheck(tsuku_git_commit_tree(&t, c), "cannot read the tree of commit '\(hex(oid))' in '\(path)'")
    return GitTip(commit: oid, tree: GitTree(t!, owner: self), time: Int64(tsuku_git_commit_time(c)))
  }

  /// The entry at `path` in `tree`; nil when there is none.
  func entry(_ tree: GitTree, _ path: String) throws -> GitTreeEntry? {
    var e: OpaquePointer?
    let rc = tsuku_git_tree_entry_bypath(&e, tree.pointer, path)
    if rc == GIT_ENOTFOUND.rawValue { return nil }
    try gitCheck(rc, "cannot read '\(path)' in '\(self.path)'")
    defer { tsuku_git_tree_entry_free(e) }
    return GitTreeEntry(e!)
  }

  /// The entry named `name` directly in `tree` (a binary search; nothing is read); nil when
  /// there is none.
  func entry(_ tree: GitTree, named name: String) -> GitTreeEntry? {
    tsuku_git_tree_entry_byname(tree.pointer, name).map(GitTreeEntry.init)
  }

  /// The entries of the tree `oid`.
  func entries(of oid: git_oid) throws -> [GitTreeEntry] {
    var id = oid
    var t: OpaquePointer?
    try gitCheck(tsuku_git_tree_lookup(&t, repo, &id), "cannot read tree '\(hex(oid))' in '\(path)'")
    defer { tsuku_git_tree_free(t) }
    return (0..<tsuku_git_tree_entrycount(t)).compactMap { tsuku_git_tree_entry_byindex(t, $0).map(GitTreeEntry.init) }
  }

  /// The size of an object, from its header (the object is not loaded).
  func size(of id: git_oid) throws -> Int {
    var oid = id
    var size = 0
    var type = GIT_OBJECT_INVALID
    try gitCheck(tsuku_git_odb_read_header(&size, &type, odb, &oid), "cannot read object '\(hex(id))' in '\(path)'")
    return size
  }

  func blob(_ id: git_oid) throws -> Data {
    var oid = id
    var blob: OpaquePointer?
    try gitCheck(tsuku_git_blob_lookup(&blob, repo, &oid), "cannot read blob '\(hex(id))' in '\(path)'")
    defer { tsuku_git_blob_free(blob) }
    let count = Int(tsuku_git_blob_rawsize(blob))
    guard count > 0, let bytes = tsuku_git_blob_rawcontent(blob) else { return Data() }
    return Data(bytes: bytes, count: count)
  }

  /// The git id the bytes would have as a blob, without writing them.
  func hash(_ data: Data) throws -> git_oid {
    var oid = git_oid()
    try data.withUnsafeBytes { buf in
      try gitCheck(tsuku_git_odb_hash(&oid, buf.baseAddress, buf.count, GIT_OBJECT_BLOB), "cannot hash a blob")
    }
    return oid
  }

  /// The tree `oid`, loaded.
  func tree(_ oid: git_oid) throws -> GitTree {
    var id = oid
    var t: OpaquePointer?
    try gitCheck(tsuku_git_tree_lookup(&t, repo, &id), "cannot read tree '\(hex(oid))' in '\(path)'")
    return GitTree(t!, owner: self)
  }

  func createBlob(_ data: Data) throws -> git_oid {
    var oid = git_oid()
    try data.withUnsafeBytes { buf in
      try gitCheck(tsuku_git_blob_create_from_buffer(&oid, repo, buf.baseAddress, buf.count), "cannot write a blob to '\(path)'")
    }
    return oid
  }

  /// Writes a commit of `tree` on `parent` by tsuku registry, dated `time` (nil: now, UTC),
  /// without moving any ref.
  func commit(tree: git_oid, parent: git_oid?, message: String, time: Date?) throws -> git_oid {
    var sig: UnsafeMutablePointer<git_signature>?
    let (name, email) = ("tsuku registry", "registry@tsuku.invalid")
    if let time {
      let seconds = git_time_t(time.timeIntervalSince1970.rounded(.down))
      try gitCheck(tsuku_git_signature_new(&sig, name, email, seconds, 0), "cannot make a commit signature")
    } else {
      try gitCheck(tsuku_git_signature_now(&sig, name, email), "cannot make a commit signature")
    }
    defer { tsuku_git_signature_free(sig) }
    var treeID = tree
    var t: OpaquePointer?
    try gitCheck(tsuku_git_tree_lookup(&t, repo, &treeID), "cannot read tree '\(hex(tree))' in '\(path)'")
    defer { tsuku_git_tree_free(t) }
    var parents: [OpaquePointer?] = []
    defer { for p in parents { tsuku_git_commit_free(p) } }
    if var p = parent {
      var c: OpaquePointer?
      try gitCheck(tsuku_git_commit_lookup(&c, repo, &p), "cannot read commit '\(hex(p))' in '\(path)'")
      parents.append(c)
    }
    let text = message.hasSuffix("\n") ? message : message + "\n"
    var out = git_oid()
    try parents.withUnsafeMutableBufferPointer { ps in
      try gitCheck(
        tsuku_git_commit_create(&out, repo, nil, sig, sig, nil, text, t, ps.count, ps.baseAddress),
        "cannot commit to '\(path)'")
    }
    return out
  }

  /// Points `branch` at `id` if it still points at `old` (or, for nil, does not exist yet).
  /// False when someone else moved it first (libgit2's `GIT_EMODIFIED`, `GIT_EEXISTS`,
  /// `GIT_ELOCKED`, `GIT_ENOTFOUND`); other failures throw.
  func moveBranch(_ branch: String, to id: git_oid, from old: git_oid?, log: String) throws -> Bool {
    var new = id
    var ref: OpaquePointer?
    defer { tsuku_git_reference_free(ref) }
    let rc: Int32
    if var old {
      rc = tsuku_git_reference_create_matching(&ref, repo, branch, &new, 1, &old, log)
    } else {
      rc = tsuku_git_reference_create(&ref, repo, branch, &new, 0, log)
    }
    if [GIT_EMODIFIED, GIT_EEXISTS, GIT_ELOCKED, GIT_ENOTFOUND].contains(where: { $0.rawValue == rc }) { return false }
    try gitCheck(rc, "cannot update branch '\(branch)' in '\(path)'")
    return true
  }
}
