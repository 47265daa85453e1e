"""What `daydream deploy APP --provider aws --dry-run` prints: the path chosen, why, the sizes
per package before and after slimming, and every resource a deploy would create."""

from __future__ import annotations

from collections.abc import Mapping

from daydream_aws.facts import SNAPSTART_PRICES
from daydream_aws.options import AwsOptions
from daydream_aws.packaging import Bundle, Package
from daydream_aws.slim import PackageSize
from daydream_core.model import Tier

MB = 2**20
SHOWN_PACKAGES = 12  # the largest packages, one line each; the rest summed


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def size_lines(bundle: Bundle) -> list[str]:
    """Per-package sizes before and after slimming, largest first, then the totals."""
    packages: list[PackageSize] = list(bundle.slim.packages) if bundle.slim else []
    packages += bundle.own
    packages.sort(key=lambda p: (-p.before, p.name))
    lines = [f"  {'package':<28} {'before':>10} {'after':>10}"]
    for package in packages[:SHOWN_PACKAGES]:
        lines.append(f"  {package.name:<28} {_mb(package.before):>10} {_mb(package.after):>10}")
    rest = packages[SHOWN_PACKAGES:]
    if rest:
        before, after = sum(p.before for p in rest), sum(p.after for p in rest)
        lines.append(f"  {f'({len(rest)} more)':<28} {_mb(before):>10} {_mb(after):>10}")
    total_before = sum(p.before for p in packages)
    lines.append(f"  {'total':<28} {_mb(total_before):>10} {_mb(bundle.unzipped_bytes):>10}")
    slim = bundle.slim
    if slim is None:
        lines.append("  (requirements not installed: install_requirements=false)")
        return lines
    dropped = ", ".join(f"{reason} {_mb(size)}" for reason, size in sorted(slim.dropped.items()))
    lines.append(f"  dropped: {dropped or 'nothing'}")
    if slim.strip_tool:
        lines.append(
            f"  stripped debug sections of {slim.stripped_files} shared objects: "
            f"{_mb(slim.stripped_bytes)}"
        )
    else:
        lines.append("  no `strip` on PATH: debug sections kept (install binutils)")
    if slim.kept_packages:
        lines.append(f"  kept, imported by their package: {', '.join(slim.kept_packages)}")
    lines.append(f"  layer zip: {_mb(bundle.zipped_bytes)} (sha256 {bundle.sha256[:16]})")
    return lines


def describe(
    runtime_name: str,
    bundle: Bundle,
    package: Package,
    why: str,
    options: AwsOptions,
    functions: Mapping[str, Tier],
    layer_name: str,
    image_tag: str,
) -> list[str]:
    """The dry-run report of deploying one runtime environment."""
    lines = [f"runtime environment {runtime_name}: {package} ({why})"]
    lines += size_lines(bundle)
    lines.append("would create:")
    if options.image_uri:
        lines.append(f"  nothing for the code: the image {options.image_uri} is deployed as named")
    elif package == "image":
        base = options.base_reference()
        lines.append(
            f"  image {options.repository}:{image_tag} in ECR (base {base}, its layers mounted; "
            "one layer with the runtime environment; pushed without Docker)"
        )
    else:
        via = " through the bucket (over 50 MB)" if package == "layer-via-s3" else ""
        lines.append(f"  layer {layer_name}{via}")
    for name, tier in functions.items():
        lines.append(f"  function {name} ({tier.name} tier, {tier.memory_mb} MB)")
        if options.snapstart:
            prices = SNAPSTART_PRICES[options.architecture]
            cache = prices.cache_cost(tier.memory_mb, 0.0)
            restore = prices.restore_cost(tier.memory_mb)
            lines.append(
                f"    SnapStart: a published version and the alias {ALIAS}; caching at least "
                f"${cache:.4f} per version (3 h), ${restore:.5f} per restore"
            )
    if options.provisioned_concurrency:
        lines.append(
            "  provisioned concurrency on the alias, when cheaper than warm-ups over "
            f"{options.provisioned_horizon_s:g} s"
        )
    lines.append("  the bucket, if missing (inter-component data)")
    return lines


ALIAS = "daydream"  # the alias SnapStart and provisioned concurrency invoke through
