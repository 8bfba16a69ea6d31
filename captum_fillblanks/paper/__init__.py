"""The paper's experiment kit, on top of :mod:`captum_fillblanks.attr`.

- :mod:`~captum_fillblanks.paper.models`: the reference models with shipped weights;
- :mod:`~captum_fillblanks.paper.data`: MNIST and Fashion-MNIST from IDX folders, and
  the bundled samples;
- :mod:`~captum_fillblanks.paper.training`: seeded training of the shipped weights;
- :mod:`~captum_fillblanks.paper.text`: the text kit, in the same shape: the tweet
  sentiment corpus and its tokenizer, the training of the reference text classifier
  (whose weights ship with the image models) and the text Table 1 into a report;
- :mod:`~captum_fillblanks.paper.reproduce`: Figs. 2-6 and Table 1 into a report;
- :mod:`~captum_fillblanks.paper.mask_study`: how many masks a result needs;
- :mod:`~captum_fillblanks.paper.scoring`: how the reports score a fill, image by image
  or text by text, and their error bars;
- :mod:`~captum_fillblanks.paper.figures`: the paper's figures as recipes (figure and
  caption), shared by the report, the demo and the docs;
- :mod:`~captum_fillblanks.paper.datasets`: what differs between the data sets;
- :mod:`~captum_fillblanks.paper.demo`: the offline demo.

Everything here calls the public API of :mod:`captum_fillblanks.attr`, as a user would.
"""
