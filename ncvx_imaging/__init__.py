"""Scientific imaging and robustness problems expressed as constrained problems solved by ncvx.

Planned modules: ``phase_retrieval`` (Gaussian and Fourier/CDI), ``deblurring`` and ``dip``
(blind deconvolution, deep image priors) and ``attacks`` (adversarial robustness). They build
``combined_fn`` problems on top of :mod:`ncvx`'s public API only.
"""
