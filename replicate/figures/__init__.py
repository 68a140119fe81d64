"""The paper's tables and figures, regenerated from this project's runs and models.

python -m replicate.figures [--runs runs/] [--checkpoint PATH | --pretrained SPEC]
                            [--images DIR] [--out figures/]

Table 1            tables.py               variants measured: config, parameters, GFLOPs
Tables 2, 5        tables.py               each run's accuracy beside the paper's
                   (paper_numbers.py holds the paper's numbers)
Figure 1           make.py, plots.py       image -> patches -> sequence -> patch embedding
Figure 6, D.8      rollout.py              attention rollout from the class token
Figure 7 left      embeddings.py           principal components of the embedding filters E
Figure 7 centre    embeddings.py           cosine similarity of the position embeddings
Figure 7 right, 11 attention_distance.py   mean attention distance by head and depth
training curves    plots.py                loss and accuracy per epoch of every run
                   (the runs read by replicate.runs.read)

images.py   the input images: a folder, or scikit-learn's digits
studies.py  each study's table, figure and verdicts, from its study.json
"""
