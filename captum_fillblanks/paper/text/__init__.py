"""The text kit: fill in the blanks on a tweet sentiment classifier, with the same shape
as the image kit.

- :mod:`~.data`: the tweet corpus, its fixed split and :class:`~.data.TweetTokenizer`
  (the image kit's :mod:`~captum_fillblanks.paper.data`);
- the model: :func:`~captum_fillblanks.paper.models.tweet_transformer` with its shipped
  weights, registered with the image models
  (:func:`~captum_fillblanks.paper.models.shipped_model` ``("tweets")``);
- :mod:`~.training`: its seeded training and the TF-IDF baseline
  (:mod:`~captum_fillblanks.paper.training`);
- the reproduction (:mod:`~captum_fillblanks.paper.reproduce`): :mod:`~.table`, the
  text Table 1 and blank recovery; :mod:`~.figures`; :mod:`~.report`,
  :func:`~.report.reproduce_tweets`, all of it. They score each text under its own mask
  with :mod:`captum_fillblanks.paper.scoring`, as the image reproduction scores images.

Nothing is imported here, so that the model module can read the tokenizer from
:mod:`~.data` while :mod:`captum_fillblanks.paper.models` loads.
"""
