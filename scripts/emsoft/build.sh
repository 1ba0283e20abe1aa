#!/usr/bin/env bash
# Build EMsoft's EMMC, EMMCOpenCL, EMEBSDmaster and EMEBSD from source into .emsoft/ of the
# checkout (git-ignored) and print EMSOFT_BIN=... (`make emsoft` runs this).
#
#   scripts/emsoft/build.sh [--check]
#
# Idempotent: a stamp keyed on the inputs (source archives, this folder's files) makes a
# second call print EMSOFT_BIN and return. What it needs and where it comes from:
#   * Debian packages (installed with apt-get when missing and running as root; otherwise it
#     names them in one line and stops).
#   * Source archives of EMsoft, json-fortran, CLFortran, BCLS and SHTfile, from
#     $EMSOFT_SOURCES (default ../shared/vendor/emsoft-src next to the checkout); with
#     EMSOFT_SOURCES=clone they are cloned at the same pinned commits (needs network).
#   * Generated or patched here, never committed: the HDF5 CMake shim (Debian has no
#     hdf5-config.cmake), resources/RandomSeeds.data (make_seeds.py), the OpenCL device type
#     (GPU -> ALL so pocl's CPU device works), and EMsoft's top-level CMakeLists lines that
#     include the manuals/ folder the snapshot leaves out.
# Environment: EMSOFT_PREFIX (default <checkout>/.emsoft), EMSOFT_JOBS (default nproc),
# EMSOFT_NO_APT=1 (never call apt-get).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
prefix="${EMSOFT_PREFIX:-$root/.emsoft}"
sources="${EMSOFT_SOURCES:-$root/../shared/vendor/emsoft-src}"
jobs="${EMSOFT_JOBS:-$(nproc)}"
check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

# name | archive glob | git repository | pinned commit or tag
archives=(
  "EMsoft|EMsoft-*.tar.gz|https://github.com/EMsoft-org/EMsoft|d50c973"
  "json-fortran|json-fortran-*.tar.gz|https://github.com/jacobwilliams/json-fortran|4.3.0"
  "clfortran|clfortran-*.tar.gz|https://github.com/marcdegraef/clfortran|9f52243"
  "BCLS|BCLS-*.tar.gz|https://github.com/BlueQuartzSoftware/BCLS|28eeb9d"
  "SHTfile|SHTfile-*.tar.gz|https://github.com/EMsoft-org/SHTfile|cd75885"
)
programs=(EMMC EMEBSDmaster EMEBSD)
optional_programs=(EMMCOpenCL)

say() { echo "emsoft: $*" >&2; }
die() { echo "emsoft: $*" >&2; exit 1; }

# ---- 1. Debian packages -----------------------------------------------------------------
# package | file or command that shows it is installed
requirements=(
  "gfortran|cmd:gfortran"
  "g++|cmd:g++"
  "cmake|cmd:cmake"
  "ninja-build|cmd:ninja"
  "libhdf5-dev|file:/usr/include/hdf5/serial/hdf5.mod"
  "libfftw3-dev|file:/usr/include/fftw3.h"
  "liblapack-dev|lib:liblapack.so"
  "libblas-dev|lib:libblas.so"
  "ocl-icd-opencl-dev|lib:libOpenCL.so"
  "opencl-headers|file:/usr/include/CL/cl.h"
  "pocl-opencl-icd|file:/etc/OpenCL/vendors/pocl.icd"
  "libnlopt-dev|file:/usr/include/nlopt.h"
)
multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
libdir="/usr/lib/$multiarch"

missing_packages() {
  local entry package test kind what
  for entry in "${requirements[@]}"; do
    IFS='|' read -r package test <<<"$entry"
    kind="${test%%:*}" what="${test#*:}"
    case "$kind" in
      cmd) command -v "$what" >/dev/null 2>&1 || echo "$package" ;;
      file) [[ -e "$what" ]] || echo "$package" ;;
      lib) [[ -e "$libdir/$what" || -e "/usr/lib/$what" ]] || echo "$package" ;;
    esac
  done
}

mapfile -t missing < <(missing_packages)
if ((${#missing[@]})); then
  if ((check_only)) || [[ "${EMSOFT_NO_APT:-0}" == 1 || $(id -u) != 0 ]] \
      || ! command -v apt-get >/dev/null; then
    die "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
  fi
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  mapfile -t missing < <(missing_packages)
  ((${#missing[@]} == 0)) || die "apt-get did not provide: ${missing[*]}"
fi

# ---- 2. sources -------------------------------------------------------------------------
declare -A archive_of=()
if [[ "$sources" != clone ]]; then
  [[ -d "$sources" ]] || die "no source folder $sources (set EMSOFT_SOURCES=DIR, or =clone)"
  absent=()
  for entry in "${archives[@]}"; do
    IFS='|' read -r name glob _ _ <<<"$entry"
    found=$(compgen -G "$sources/$glob" | head -n 1 || true)
    if [[ -n "$found" ]]; then archive_of[$name]="$found"; else absent+=("$glob"); fi
  done
  ((${#absent[@]} == 0)) || die "missing source archives in $sources: ${absent[*]}"
fi

# The stamp: every input that changes the result.
stamp_key() {
  {
    for name in "${!archive_of[@]}"; do
      echo "$name $(basename "${archive_of[$name]}") $(stat -c %s "${archive_of[$name]}")"
    done | sort
    echo "sources=$sources"
    cat "$here"/build.sh "$here"/make_seeds.py "$here"/hdf5-config.cmake.in
    gfortran -dumpfullversion
  } | sha256sum | cut -d' ' -f1
}
key="$(stamp_key)"
stamp="$prefix/.built"
bindir="$prefix/bin"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
  ok=1
  for p in "${programs[@]}"; do [[ -x "$bindir/$p" ]] || ok=0; done
  if ((ok)); then
    echo "EMSOFT_BIN=$bindir"
    exit 0
  fi
fi
((check_only)) && die "not built yet; run \`make emsoft\`"

started=$(date +%s)
src="$prefix/src"
build="$prefix/build"
deps="$prefix/deps"
rm -rf "$src" "$build" "$deps" "$bindir" "$stamp"
mkdir -p "$src" "$build" "$deps" "$bindir"

for entry in "${archives[@]}"; do
  IFS='|' read -r name glob repo commit <<<"$entry"
  if [[ "$sources" == clone ]]; then
    say "cloning $repo at $commit"
    git clone -q "$repo" "$src/$name"
    git -C "$src/$name" checkout -q "$commit"
  else
    mkdir -p "$src/$name"
    tar -xzf "${archive_of[$name]}" -C "$src/$name" --strip-components=1
  fi
done

log="$prefix/build.log"
: >"$log"
run() {  # run a build step quietly; on failure show the log's tail and stop
  local what="$1"
  shift
  say "$what"
  if ! "$@" >>"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "$what failed (full log: $log)"
  fi
}
cmake_common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -Wno-dev -DCMAKE_POLICY_DEFAULT_CMP0074=NEW)

# ---- 3. dependencies Debian lacks ------------------------------------------------------
run "configuring json-fortran" cmake "${cmake_common[@]}" -S "$src/json-fortran" \
  -B "$build/json-fortran" -DCMAKE_INSTALL_PREFIX="$deps/json-fortran" -DSKIP_DOC_GEN=ON \
  -DUSE_GNU_INSTALL_CONVENTION=ON -DENABLE_TESTS=OFF
run "building json-fortran" cmake --build "$build/json-fortran" -j "$jobs" --target install

run "configuring CLFortran" cmake "${cmake_common[@]}" -S "$src/clfortran" \
  -B "$build/clfortran" -DCMAKE_INSTALL_PREFIX="$deps/clfortran" \
  -DCMAKE_Fortran_FLAGS=-fallow-invalid-boz
run "building CLFortran" cmake --build "$build/clfortran" -j "$jobs" --target install

run "configuring BCLS" cmake "${cmake_common[@]}" -S "$src/BCLS" -B "$build/BCLS" \
  -DCMAKE_INSTALL_PREFIX="$deps/bcls" -DCMAKE_POSITION_INDEPENDENT_CODE=ON
run "building BCLS" cmake --build "$build/BCLS" -j "$jobs" --target install

# ---- 4. the HDF5 CMake shim -------------------------------------------------------------
h5inc=/usr/include/hdf5/serial
h5ver=$(sed -n 's/^#define H5_VERS_INFO "HDF5 library version: \([0-9.]*\)".*/\1/p' \
  "$h5inc/H5public.h")
h5lib="$libdir/hdf5/serial"
[[ -e "$h5lib/libhdf5.so" ]] || h5lib="$libdir"
pick() {  # the first existing library among the names given
  local n
  for n in "$@"; do [[ -e "$h5lib/$n" ]] && { echo "$h5lib/$n"; return; }; done
  die "HDF5 library $1 not found in $h5lib"
}
mkdir -p "$deps/hdf5-shim"
sed -e "s|@HDF5_VERSION@|$h5ver|g" -e "s|@HDF5_VERSION_MAJOR@|${h5ver%.*}|g" \
  -e "s|@HDF5_INCLUDE@|$h5inc|g" \
  -e "s|@LIB_C@|$(pick libhdf5.so libhdf5_serial.so)|" \
  -e "s|@LIB_HL@|$(pick libhdf5_hl.so libhdf5_serial_hl.so)|" \
  -e "s|@LIB_F@|$(pick libhdf5_fortran.so libhdf5_serial_fortran.so)|" \
  -e "s|@LIB_HLF@|$(pick libhdf5hl_fortran.so libhdf5_hl_fortran.so libhdf5_serialhl_fortran.so)|" \
  "$here/hdf5-config.cmake.in" >"$deps/hdf5-shim/hdf5-config.cmake"

# ---- 5. EMsoft: generate and patch, then build the four programs ------------------------
ems="$src/EMsoft"
python3 "$here/make_seeds.py" "$ems/resources/RandomSeeds.data"
# The snapshot has no manuals/ folder; its top-level CMakeLists includes two files from it.
sed -i -e '/manuals\/examples\/SourceList.cmake/d' -e '/manuals\/CMakeLists.txt/d' \
  "$ems/CMakeLists.txt"
# OpenCL programs ask for GPU devices only; ALL also lists pocl's CPU device (and GPUs first
# on machines that have them, so devid 1 stays the GPU there).
sed -i 's/CL_DEVICE_TYPE_GPU/CL_DEVICE_TYPE_ALL/g' "$ems/Source/EMOpenCLLib/CLsupport.f90"
# EMMC sets Emin = Ehistmin - Ebinsize/2 and then overwrites it with 0, so an electron that
# leaves below the histogram gets energy bin <= 0: it is counted in another pixel's bins
# and, past the array start, corrupts memory (SIGSEGV after ~1e7 electrons). Drop the
# overwrite (EMMCOpenCL skips such electrons the same way).
grep -q '^ Emin = 0.D0$' "$ems/Source/SEM/EMMC.f90" || die "EMMC.f90: Emin line not found"
sed -i '/^ Emin = 0.D0$/d' "$ems/Source/SEM/EMMC.f90"

json_dir=$(dirname "$(find "$deps/json-fortran" -name 'jsonfortran-gnu-config.cmake' | head -n 1)")
[[ -d "$json_dir" ]] || die "json-fortran installed no jsonfortran-gnu-config.cmake"
bcls_dir=$(dirname "$(find "$deps/bcls" -name 'bclsConfig.cmake' -o -name 'bcls-config.cmake' \
  | head -n 1)")
modality_flags=()
for m in DictionaryIndexing GBs EEC OLIO OM pyEMsoft TEM QC Utilities XRay; do
  modality_flags+=("-DEMsoft_ENABLE_$m=OFF")
done
run "configuring EMsoft" cmake "${cmake_common[@]}" -S "$ems" -B "$build/EMsoft" \
  -DHDF5_DIR="$deps/hdf5-shim" -DHDF5_INSTALL="/usr/bin/" \
  -Djsonfortran-gnu_DIR="$json_dir" -DCLFortran_DIR="$deps/clfortran/lib/cmake/CLFortran" \
  -Dbcls_DIR="$bcls_dir" -DFFTW3_INCLUDE_DIR=/usr/include -DFFTW3_LIBRARY="$libdir/libfftw3.so" \
  -DFETCHCONTENT_SOURCE_DIR_SHTFILE="$src/SHTfile" -DFETCHCONTENT_FULLY_DISCONNECTED=ON \
  -DEMsoft_ENABLE_TESTING=OFF "${modality_flags[@]}"
run "building ${programs[*]} (the longest step)" \
  cmake --build "$build/EMsoft" -j "$jobs" --target "${programs[@]}"
if cmake --build "$build/EMsoft" -j "$jobs" --target "${optional_programs[@]}" >>"$log" 2>&1
then
  say "built ${optional_programs[*]}"
else
  say "${optional_programs[*]} did not build (see $log); EMMC is the Monte Carlo"
fi

# ---- 6. EMsoft's run-time folder and configuration -----------------------------------------
# EMsoft finds RandomSeeds.data under <EMsoftpathname>/resources, namelist templates under
# <EMsoftpathname>/NamelistTemplates and OpenCL kernels under <EMsoftpathname>/opencl; it reads
# $HOME/.config/EMsoft/EMsoftConfig.json (EMSOFTPATHNAME etc. in the environment win).
share="$prefix/share"
rm -rf "$share"
mkdir -p "$share"
cp -r "$ems/resources" "$ems/NamelistTemplates" "$ems/opencl" "$share/"
emsbin="$build/EMsoft/Bin"
for p in "${programs[@]}" "${optional_programs[@]}"; do
  [[ -x "$emsbin/$p" ]] && ln -sfn "$emsbin/$p" "$bindir/$p"
done
config=$(cat <<JSON
{
  "EMsoftpathname": "$share/",
  "EMXtalFolderpathname": "$prefix/xtal/",
  "EMdatapathname": "$prefix/data/",
  "EMtmppathname": "$prefix/tmp/",
  "EMsoftLibraryLocation": "$emsbin/",
  "EMSlackWebHookURL": "",
  "EMSlackChannel": "",
  "UserName": "ebsdlake",
  "UserLocation": "",
  "UserEmail": "",
  "EMNotify": "Off",
  "Develop": "No",
  "Release": "No",
  "h5copypath": "/usr/bin/h5copy",
  "EMsoftplatform": "Linux",
  "EMsofttestpath": "",
  "EMsoftTestingPath": "",
  "EMsoftversion": "",
  "Configpath": "$prefix/home/.config/EMsoft/",
  "Templatepathname": "$share/NamelistTemplates/",
  "Resourcepathname": "$share/resources/",
  "Homepathname": "$prefix/home/",
  "OpenCLpathname": "$share/opencl/",
  "Templatecodefilename": "templatecodes.txt",
  "WyckoffPositionsfilename": "WyckoffPositions.txt",
  "Randomseedfilename": "RandomSeeds.data",
  "EMsoftnativedelimiter": "/"
}
JSON
)
mkdir -p "$prefix/xtal" "$prefix/data" "$prefix/tmp" "$prefix/home/.config/EMsoft"
echo "$config" >"$prefix/EMsoftConfig.json"
echo "$config" >"$prefix/home/.config/EMsoft/EMsoftConfig.json"
cat >"$prefix/env.sh" <<ENV
# source this file to run EMsoft's programs by hand (the ebsdlake engine needs only EMSOFT_BIN)
export EMSOFT_BIN="$bindir"
export PATH="$bindir:\$PATH"
export HOME="$prefix/home"
ENV

for p in "${programs[@]}"; do [[ -x "$bindir/$p" ]] || die "$p was not built (log: $log)"; done
echo "$key" >"$stamp"
say "built in $(($(date +%s) - started)) s with $jobs jobs: $(cd "$bindir" && echo *)"
echo "EMSOFT_BIN=$bindir"
