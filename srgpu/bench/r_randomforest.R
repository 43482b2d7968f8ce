# R randomForest on the benchmark's synthetic data: fit and predict timed separately.
#
#   Rscript srgpu/bench/r_randomforest.R DATA_DIR
#
# DATA_DIR holds {SR,HR}_train.csv (predictor columns, then y) and {SR,HR}_grid.csv (predictor
# columns); the script writes DATA_DIR/r_result.json. Settings are the paper's (quantregForest
# 1.3-7 passes them to randomForest): ntree = 500, nodesize = 5, mtry = max(floor(p / 3), 1).
suppressPackageStartupMessages(library(randomForest))

args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
ntree <- if (length(args) >= 2) as.integer(args[2]) else 500L
set.seed(20210505)

one <- function(flux) {
  train <- read.csv(file.path(dir, paste0(flux, "_train.csv")))
  grid <- read.csv(file.path(dir, paste0(flux, "_grid.csv")))
  p <- ncol(train) - 1
  x <- train[, 1:p, drop = FALSE]
  y <- train[, p + 1]
  mtry <- max(floor(p / 3), 1)
  fit_s <- system.time(
    rf <- randomForest(x, y, ntree = ntree, nodesize = 5, mtry = mtry)
  )[["elapsed"]]
  predict_s <- system.time(pred <- predict(rf, grid))[["elapsed"]]
  sprintf(
    paste0(
      '"%s": {"train_rows": %d, "predictors": %d, "mtry": %d, "trees": %d, ',
      '"grid_rows": %d, "fit_s": %.6f, "predict_s": %.6f, "mean_nodes_per_tree": %.3f, ',
      '"prediction_mean": %.6f}'
    ),
    flux, nrow(x), p, mtry, ntree, nrow(grid), fit_s, predict_s,
    mean(rf$forest$ndbigtree), mean(pred)
  )
}

parts <- c(one("SR"), one("HR"))
# peak resident set of this process (VmHWM, KiB), NA where /proc is absent
status <- tryCatch(readLines("/proc/self/status"), error = function(e) character(0))
hwm <- grep("^VmHWM:", status, value = TRUE)
hwm_mb <- if (length(hwm)) as.numeric(strsplit(trimws(sub("VmHWM:", "", hwm)), " +")[[1]][1]) / 1024 else NA
parts <- c(parts, sprintf('"vm_hwm_mb": %s', if (is.na(hwm_mb)) "null" else sprintf("%.3f", hwm_mb)))
version <- paste(packageVersion("randomForest"), sep = "")
json <- sprintf(
  '{"r_version": "%s", "randomForest": "%s", %s}',
  paste(R.version$major, R.version$minor, sep = "."), version, paste(parts, collapse = ", ")
)
writeLines(json, file.path(dir, "r_result.json"))
