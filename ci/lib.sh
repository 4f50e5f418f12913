# Helpers shared by the ci/<scheduler>/ scripts; source it after defining log() and die().
# APT_LOG names the file apt's output goes to.

apt_install() {  # apt_install PKG...: install what is missing, updating the lists once if needed
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  local a=(apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}")
  if ! "${a[@]}" >"$APT_LOG" 2>&1; then
    apt-get -o DPkg::Lock::Timeout=900 update -q >>"$APT_LOG" 2>&1 || true
    "${a[@]}" >>"$APT_LOG" 2>&1 || die "apt-get install ${missing[*]} failed"
  fi
}

pids_of() {  # running processes whose executable is exactly $1 (a replaced binary shows " (deleted)")
  local p e
  for p in /proc/[0-9]*; do
    e=$(readlink "$p/exe" 2>/dev/null) || continue
    [ "$e" = "$1" ] || [ "$e" = "$1 (deleted)" ] && echo "${p#/proc/}"
  done
  return 0
}

research_dir() {  # research_dir SUBDIR: the shared/research folder holding SUBDIR (beside the clone in CI)
  local d
  for d in "${RESEARCH_DIR:-}" "$here/../../../shared/research" /work/shared/research; do
    [ -n "$d" ] && [ -d "$d/$1" ] && { (cd "$d" && pwd); return 0; }
  done
  return 1
}

tail_logs() {  # tail_logs DIR... -- FILE...: the newest file of each log directory, then each log file, to stderr
  local a f files=0
  for a in "$@"; do
    if [ "$a" = -- ]; then files=1
    elif [ $files = 0 ]; then
      f=$(ls -t "$a" 2>/dev/null | head -1)
      [ -n "$f" ] && { echo "---- last lines of $a/$f" >&2; tail -n 25 "$a/$f" >&2; }
    else
      [ -s "$a" ] && { echo "---- last lines of $a" >&2; tail -n 15 "$a" >&2; }
    fi
  done
  return 0
}
