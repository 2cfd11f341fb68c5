"""Scientific imaging and robustness problems expressed as constrained problems solved by ncvx.

Subpackages (each builds ``combined_fn`` problems on :mod:`ncvx`'s public API only):

- :mod:`ncvx_imaging.attacks` — adversarial robustness: min-distance and max-loss attacks.
- :mod:`ncvx_imaging.phase_retrieval` — Gaussian and Fourier (CDI) phase retrieval, baselines.
- :mod:`ncvx_imaging.symmetry` — symmetry breaking for learned phase-retrieval inversion.
- :mod:`ncvx_imaging.deblurring` — non-blind and blind deconvolution with discrepancy constraints.
- :mod:`ncvx_imaging.dip` — deep image priors fitted through ncvx's ``nn.Module`` mode.

Test images come from scikit-image and scikit-learn (the ``imaging`` extra); nothing is downloaded.
"""
