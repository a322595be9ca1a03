#!/usr/bin/env bash
# Build wsbridge (release) and install it for C/C++ users under a prefix:
#
#   PREFIX=/usr/local scripts/install.sh        # PREFIX defaults to /usr/local
#
# Environment:
#   PREFIX            install prefix (absolute)
#   LIBDIR            library directory (default $PREFIX/lib; must be under $PREFIX)
#   DESTDIR           staging root for packagers: files go to $DESTDIR$PREFIX/...,
#                     but the .pc and CMake files name $PREFIX
#   WSB_NO_BUILD=1    install what `cargo build --release --lib` already built
#   CARGO_TARGET_DIR  honoured as by cargo
#
# Lays out (Linux):
#   $LIBDIR/libwsbridge.so.1.<version>   the library, soname libwsbridge.so.1 (ABI 1)
#   $LIBDIR/libwsbridge.so.1             -> libwsbridge.so.1.<version>   (run time)
#   $LIBDIR/libwsbridge.so               -> libwsbridge.so.1             (-lwsbridge)
#   $LIBDIR/libwsbridge.a                static library
#   $PREFIX/include/wsbridge.h, wsbridge.hpp   (the C header; the C++17 wrapper)
#   $LIBDIR/pkgconfig/wsbridge.pc
#   $PREFIX/share/doc/wsbridge/THIRD-PARTY-NOTICES, LICENSE-MIT, LICENSE-APACHE
#     (the licences of the crates compiled into the library, and its own)
#   $LIBDIR/cmake/wsbridge/wsbridgeConfig.cmake, wsbridgeConfigVersion.cmake
#     (imported targets wsbridge::wsbridge and wsbridge::wsbridge_static, and
#     wsbridge::wsbridge_cpp: wsbridge::wsbridge plus C++17, for wsbridge.hpp)
#
# Why a script and not cargo-c: see "Install" in the README.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

die() { echo "install.sh: $*" >&2; exit 1; }
[ "$(uname -s)" = Linux ] || die "this script installs the Linux library; for Windows see README (Windows)"

PREFIX=${PREFIX:-/usr/local}
case $PREFIX in /*) ;; *) die "PREFIX must be an absolute path (got '$PREFIX')" ;; esac
PREFIX=${PREFIX%/}
LIBDIR=${LIBDIR:-$PREFIX/lib}
LIBDIR=${LIBDIR%/}
case $LIBDIR in "$PREFIX"/*) ;; *) die "LIBDIR ($LIBDIR) must be under PREFIX ($PREFIX)" ;; esac
INCLUDEDIR=$PREFIX/include
DESTDIR=${DESTDIR:-}

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
ABI=$(sed -n 's/^#define WSB_ABI_VERSION \([0-9]*\)$/\1/p' include/wsbridge.h)
[ -n "$VERSION" ] && [ -n "$ABI" ] || die "cannot read the version (Cargo.toml) or the ABI version (include/wsbridge.h)"
SONAME=libwsbridge.so.$ABI
REAL=libwsbridge.so.$ABI.$VERSION

if [ "${WSB_NO_BUILD:-0}" != 1 ]; then
    cargo build --release --lib -p wsbridge
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
OUT=$TARGET_DIR/release
[ -f "$OUT/libwsbridge.so" ] || die "no $OUT/libwsbridge.so (build first, or unset WSB_NO_BUILD)"
[ -f "$OUT/libwsbridge.a" ] || die "no $OUT/libwsbridge.a"
if command -v readelf >/dev/null; then
    readelf -d "$OUT/libwsbridge.so" | grep -q "Library soname: \[$SONAME\]" ||
        die "$OUT/libwsbridge.so does not have the soname $SONAME (see build.rs)"
fi

# Pointer size of the built library (ELF class byte: 1 = 32-bit, 2 = 64-bit),
# for the CMake version file.
case $(od -An -tx1 -j4 -N1 "$OUT/libwsbridge.so" | tr -d ' \n') in
    01) SIZEOF_VOID_P=4 ;;
    *) SIZEOF_VOID_P=8 ;;
esac

D_LIB=$DESTDIR$LIBDIR
D_INC=$DESTDIR$INCLUDEDIR
mkdir -p "$D_LIB/pkgconfig" "$D_LIB/cmake/wsbridge" "$D_INC"

install -m 0755 "$OUT/libwsbridge.so" "$D_LIB/$REAL"
ln -sfn "$REAL" "$D_LIB/$SONAME"
ln -sfn "$SONAME" "$D_LIB/libwsbridge.so"
install -m 0644 "$OUT/libwsbridge.a" "$D_LIB/libwsbridge.a"
install -m 0644 include/wsbridge.h "$D_INC/wsbridge.h"
install -m 0644 include/wsbridge.hpp "$D_INC/wsbridge.hpp"
D_DOC=$DESTDIR$PREFIX/share/doc/wsbridge
mkdir -p "$D_DOC"
install -m 0644 THIRD-PARTY-NOTICES LICENSE-MIT LICENSE-APACHE "$D_DOC/"

# What a program linking libwsbridge.a also needs: the native libraries of
# Rust's std, as this rustc reports them (wsbridge's own dependencies add none).
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
STATIC_LIBS=$(echo '' | "${RUSTC:-rustc}" --crate-type staticlib --print native-static-libs \
    -o "$TMP/probe.a" - 2>&1 | sed -n 's/.*native-static-libs: //p' | head -1)
STATIC_LIBS=${STATIC_LIBS:-"-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"}
# The same for CMake: "-lfoo" -> "foo" (libc is implied).
CMAKE_STATIC_LIBS=$(for l in $STATIC_LIBS; do l=${l#-l}; [ "$l" = c ] || printf '%s;' "$l"; done)
CMAKE_STATIC_LIBS="Threads::Threads;${CMAKE_STATIC_LIBS%;}"

# pkg-config: paths relative to ${prefix}, so the file still works if the
# whole prefix is moved and pkg-config is run with --define-prefix.
cat > "$D_LIB/pkgconfig/wsbridge.pc" <<PC
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${prefix}/${LIBDIR#"$PREFIX"/}
includedir=\${prefix}/include

Name: wsbridge
Description: WebSocket client with a C ABI (ABI $ABI)
Version: $VERSION
Libs: -L\${libdir} -lwsbridge
Libs.private: $STATIC_LIBS
Cflags: -I\${includedir}
PC

# CMake package: relocatable (the prefix is found from this file's place).
CMAKE_DIR=$LIBDIR/cmake/wsbridge
UP=$(realpath -m --relative-to="$CMAKE_DIR" "$PREFIX")
LIB_REL=${LIBDIR#"$PREFIX"/}
cat > "$D_LIB/cmake/wsbridge/wsbridgeConfig.cmake" <<CMAKE
# wsbridge $VERSION (ABI $ABI), installed by scripts/install.sh.
#
#   find_package(wsbridge REQUIRED)          # or: find_package(wsbridge 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE wsbridge::wsbridge)          # libwsbridge.so
#   target_link_libraries(app PRIVATE wsbridge::wsbridge_static)   # libwsbridge.a
#   target_link_libraries(app PRIVATE wsbridge::wsbridge_cpp)      # C++: wsbridge.hpp (C++17) + the .so
#
# Also sets wsbridge_VERSION, wsbridge_ABI_VERSION, wsbridge_INCLUDE_DIRS and
# wsbridge_LIBRARIES (= wsbridge::wsbridge), and wsbridge_CXX_HEADER (wsbridge.hpp).
get_filename_component(_wsb_prefix "\${CMAKE_CURRENT_LIST_DIR}/$UP" ABSOLUTE)
set(_wsb_libdir "\${_wsb_prefix}/$LIB_REL")

include(CMakeFindDependencyMacro)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_dependency(Threads)

if(NOT TARGET wsbridge::wsbridge)
  add_library(wsbridge::wsbridge SHARED IMPORTED)
  set_target_properties(wsbridge::wsbridge PROPERTIES
    IMPORTED_LOCATION "\${_wsb_libdir}/$REAL"
    IMPORTED_SONAME "$SONAME"
    INTERFACE_INCLUDE_DIRECTORIES "\${_wsb_prefix}/include")
endif()
if(NOT TARGET wsbridge::wsbridge_static)
  add_library(wsbridge::wsbridge_static STATIC IMPORTED)
  set_target_properties(wsbridge::wsbridge_static PROPERTIES
    IMPORTED_LOCATION "\${_wsb_libdir}/libwsbridge.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_wsb_prefix}/include"
    INTERFACE_LINK_LIBRARIES "$CMAKE_STATIC_LIBS")
endif()
if(NOT TARGET wsbridge::wsbridge_cpp)
  # include/wsbridge.hpp: header-only, C++17, over the shared library.
  add_library(wsbridge::wsbridge_cpp INTERFACE IMPORTED)
  set_target_properties(wsbridge::wsbridge_cpp PROPERTIES
    INTERFACE_LINK_LIBRARIES wsbridge::wsbridge
    INTERFACE_COMPILE_FEATURES cxx_std_17)
endif()

set(wsbridge_VERSION "$VERSION")
set(wsbridge_ABI_VERSION $ABI)
set(wsbridge_INCLUDE_DIRS "\${_wsb_prefix}/include")
set(wsbridge_CXX_HEADER "\${_wsb_prefix}/include/wsbridge.hpp")
set(wsbridge_LIBRARIES wsbridge::wsbridge)
unset(_wsb_prefix)
unset(_wsb_libdir)
CMAKE

cat > "$D_LIB/cmake/wsbridge/wsbridgeConfigVersion.cmake" <<CMAKE
# wsbridge $VERSION. A request is compatible when it is not newer than this
# version and has the same major version (the same major.minor while the
# major is 0, as Cargo reads semver). The library is $((SIZEOF_VOID_P * 8))-bit.
set(PACKAGE_VERSION "$VERSION")
if(NOT CMAKE_SIZEOF_VOID_P STREQUAL "$SIZEOF_VOID_P")
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} ($((SIZEOF_VOID_P * 8))bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
  return()
endif()
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  string(REGEX MATCH "^([0-9]+)\\\\.([0-9]+)" _wsb_have "\${PACKAGE_VERSION}")
  set(_wsb_have_major "\${CMAKE_MATCH_1}")
  set(_wsb_have_minor "\${CMAKE_MATCH_2}")
  if(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL _wsb_have_major)
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  elseif(_wsb_have_major STREQUAL "0" AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL _wsb_have_minor
         AND NOT "\${PACKAGE_FIND_VERSION_COUNT}" STREQUAL "1")
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  else()
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
CMAKE

echo "installed wsbridge $VERSION (ABI $ABI, soname $SONAME) under ${DESTDIR}$PREFIX:"
(cd "$DESTDIR$PREFIX" && find . \( -path "./${LIB_REL}/*wsbridge*" -o -path './include/wsbridge.h*' -o -path './share/doc/wsbridge/*' \) | sort | sed 's|^\./|  |')
